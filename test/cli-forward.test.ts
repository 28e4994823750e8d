// End-to-end `loom forward` and `loom info` through the real executable, on the reference
// fixture's weights saved as a model directory: the CLI must reproduce the fixture tensors.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { paramsFromStored } from "../src/model/checkpoint.ts";
import { configFromJson } from "../src/model/config-json.ts";
import { createModel } from "../src/model/model.ts";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/node/model-dir.ts";
import { saveModel } from "../src/node/model-io.ts";
import {
  assertClose,
  fixture,
  fixtureConfigJson,
  fixtureWeights,
  maxAbs,
  maxAbsDiff,
  runLoom,
} from "./helpers.ts";

const work = mkdtempSync(join(tmpdir(), "loom-cli-"));
after(() => {
  rmSync(work, { recursive: true, force: true });
});

const config = configFromJson(fixtureConfigJson());
const modelDir = join(work, "model");
saveModel(
  modelDir,
  createModel(config, paramsFromStored(config, fixtureWeights(), "weights.safetensors")),
);

function rows(name: string, width: number): number[][] {
  const flat = Array.from(fixture(name).int32());
  return Array.from({ length: flat.length / width }, (_, i) =>
    flat.slice(i * width, (i + 1) * width),
  );
}
const tokens = join(work, "tokens.json");
writeFileSync(tokens, JSON.stringify(rows("input_ids", 12)));

function loom(...args: string[]): ReturnType<typeof runLoom> {
  return runLoom(args);
}

test("loom forward --steps 4 --init-state zero reproduces fwd.n4", () => {
  const out = join(work, "fwd.safetensors");
  const r = loom(
    "forward",
    "--model",
    modelDir,
    "--tokens",
    tokens,
    "--steps",
    "4",
    "--init-state",
    "zero",
    "--out",
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const t = readSafetensorsFile(out).tensors;
  assert.deepEqual(t.get("logits")?.shape, [2, 12, 96]);
  assert.deepEqual(t.get("latent_states")?.shape, [2, 12, 64]);
  assertClose(
    t.get("logits")?.float32() ?? [],
    fixture("fwd.n4.logits").float32(),
    1e-4,
    "cli fwd.n4.logits",
  );
  assertClose(
    t.get("latent_states")?.float32() ?? [],
    fixture("fwd.n4.latent_states").float32(),
    1e-4,
    "cli fwd.n4.latent_states",
  );
});

test("loom forward --init-state FILE uses input_states", () => {
  const states = join(work, "states.safetensors");
  writeSafetensorsFile(states, [
    {
      name: "input_states",
      shape: [2, 12, 64],
      data: fixture("fwd_states.input_states").float32(),
    },
  ]);
  const out = join(work, "fwd-states.safetensors");
  const r = loom(
    "forward",
    "--model",
    modelDir,
    "--tokens",
    tokens,
    "--steps",
    "4",
    "--init-state",
    states,
    "--out",
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const logits = readSafetensorsFile(out).tensors.get("logits")?.float32() ?? [];
  assertClose(logits, fixture("fwd_states.n4.logits").float32(), 1e-4, "cli fwd_states.n4.logits");
});

test("loom forward --labels: loss and every gradient of the truncated step", () => {
  const ids = join(work, "train-ids.json");
  const labels = join(work, "train-labels.json");
  writeFileSync(ids, JSON.stringify(rows("train.input_ids", 12)));
  writeFileSync(labels, JSON.stringify(rows("train.labels", 12)));
  const out = join(work, "train.safetensors");
  const r = loom(
    "forward",
    "--model",
    modelDir,
    "--tokens",
    ids,
    "--labels",
    labels,
    "--no-grad-steps",
    "3",
    "--grad-steps",
    "2",
    "--init-state",
    "zero",
    "--out",
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const t = readSafetensorsFile(out).tensors;
  const loss = t.get("loss")?.float32()[0] ?? Number.NaN;
  assert.ok(Math.abs(loss - fixture("train.loss").float32()[0]) <= 1e-5, `loss ${loss}`);
  const grads = [...t.keys()].filter((k) => k.startsWith("grad."));
  assert.equal(grads.length, 39);
  for (const name of grads) {
    const expected = fixture(name).float32();
    const rel = maxAbsDiff(t.get(name)?.float32() ?? [], expected) / maxAbs(expected);
    assert.ok(rel <= 1e-4, `${name}: ${rel}`);
  }
});

test("bad input: one line naming the flag or file, non-zero exit", () => {
  const cases: [string[], RegExp][] = [
    [
      [
        "forward",
        "--model",
        modelDir,
        "--tokens",
        tokens,
        "--out",
        join(work, "x.st"),
        "--bogus",
        "1",
      ],
      /unknown flag --bogus/,
    ],
    [
      ["forward", "--model", join(work, "nope"), "--tokens", tokens, "--out", join(work, "x.st")],
      /nope/,
    ],
    [
      [
        "forward",
        "--model",
        modelDir,
        "--tokens",
        tokens,
        "--steps",
        "four",
        "--out",
        join(work, "x.st"),
      ],
      /--steps must be a non-negative integer, got "four"/,
    ],
    [["forward", "--model", modelDir, "--tokens", tokens], /missing required flag --out/],
    [["info"], /exactly one of --model or --config/],
    [["nonsense"], /unknown command "nonsense"/],
  ];
  for (const [args, re] of cases) {
    const r = loom(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
  const ragged = join(work, "ragged.json");
  writeFileSync(ragged, "[[1,2,3],[4,5]]");
  const r = loom("forward", "--model", modelDir, "--tokens", ragged, "--out", join(work, "x.st"));
  assert.match(r.stderr, /ragged\.json: row 1 has 2 tokens, row 0 has 3/);
});

test("loom info: Huginn-0125 sizes as the reference doc gives them", () => {
  const cfg = join(work, "huginn.json");
  writeFileSync(cfg, "{}");
  const r = loom("info", "--config", cfg, "--steps", "32", "--json");
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Record<string, number>;
  assert.equal(info.uniqueParams, 3_564_976_800);
  assert.ok(Math.abs(info.materializedParams / 1e9 - 52.6) < 0.05);
  assert.equal(info.kvBytesPerTokenBf16, 132 * 2 * 5280 * 2);
  const text = loom("info", "--model", modelDir);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /179\.78 K/);
});

test("--help lists every flag with its default", () => {
  const r = loom("forward", "--help");
  assert.equal(r.status, 0);
  for (const flag of [
    "--model",
    "--tokens",
    "--steps",
    "--init-state",
    "--seed",
    "--out",
    "--labels",
  ]) {
    assert.ok(r.stdout.includes(flag), flag);
  }
  assert.match(r.stdout, /default: random/);
  assert.equal(loom("--help").status, 0);
});
