// `loom trace` end to end on a tiny random model directory: files, JSON shape, one pca entry per
// step; --prompt through the model's tokenizer; --all-rows; and one-line errors for bad input.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { Trajectory } from "../src/analysis/trajectory.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { saveModel } from "../src/node/model-io.ts";
import { Rng } from "../src/tensor/random.ts";

const root = new URL("..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "loom-trace-"));
const model = join(dir, "model");
const tok = buildCharTokenizer(["abc 123+="]);
saveModel(model, initModel(presets.tiny, new Rng(2)), {
  extraFiles: { "tokenizer.json": JSON.stringify(tok.toJSON()) },
});
writeFileSync(
  join(dir, "tokens.json"),
  JSON.stringify([
    [1, 5, 9, 14, 3, 7],
    [2, 8, 8],
  ]),
);
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function loom(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ["bin/loom.js", ...args], { cwd: root, encoding: "utf8" });
}

const read = (p: string): Trajectory => JSON.parse(readFileSync(p, "utf8")) as Trajectory;

test("loom trace --tokens: trajectory.json, figures and report.html", () => {
  const out = join(dir, "t1");
  const r = loom(
    "trace",
    "--model",
    model,
    "--tokens",
    join(dir, "tokens.json"),
    "--steps",
    "6",
    "--seeds",
    "2",
    "--out",
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /classes: /);
  for (const f of [
    "trajectory.json",
    "report.html",
    "convergence.png",
    "pca-tokens.png",
    "lens-kl.png",
  ]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  const png = readFileSync(join(out, "convergence.png"));
  assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
  const tr = read(join(out, "trajectory.json"));
  assert.equal(tr.version, 1);
  assert.equal(tr.steps, 6);
  assert.deepEqual(tr.seeds, [0, 1]);
  assert.deepEqual(
    tr.tokens.map((t) => t.id),
    [1, 5, 9, 14, 3, 7],
  );
  for (const [i, t] of tr.tokens.entries()) {
    assert.equal(t.index, i);
    assert.equal(typeof t.text, "string");
    assert.ok(["fixed-point", "orbit", "slider", "unconverged"].includes(t.class));
    assert.ok(t.convergenceStep === null || (t.convergenceStep >= 1 && t.convergenceStep <= 6));
    assert.equal(t.pca.length, 6, "one pca entry per step");
    assert.equal(t.distance.length, 6);
    assert.equal(t.distance[5], 0);
    assert.equal(t.lens.length, 6);
    assert.equal(t.seeds.length, 1);
  }
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /data:image\/png;base64,/);
  assert.match(html, /id="lens"/);
  assert.match(html, /id="trajectory-data"/);
  assert.doesNotMatch(html, /<script[^>]+src=/, "self-contained: no external scripts");
});

test("loom trace --prompt (tokenizer) and --generate; --all-rows", () => {
  const out = join(dir, "t2");
  const r = loom(
    "trace",
    "--model",
    model,
    "--prompt",
    "ab 12",
    "--steps",
    "4",
    "--generate",
    "2",
    "--no-figures",
    "--out",
    out,
  );
  assert.equal(r.status, 0, r.stderr);
  const tr = read(join(out, "trajectory.json"));
  assert.equal(tr.tokens.length, 7);
  assert.deepEqual(
    tr.tokens.slice(0, 5).map((t) => t.text),
    ["a", "b", " ", "1", "2"],
  );
  assert.deepEqual(
    tr.tokens.map((t) => t.generated),
    [false, false, false, false, false, true, true],
  );
  const out3 = join(dir, "t3");
  const r3 = loom(
    "trace",
    "--model",
    model,
    "--tokens",
    join(dir, "tokens.json"),
    "--steps",
    "3",
    "--all-rows",
    "--no-figures",
    "--out",
    out3,
  );
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(read(join(out3, "row-1", "trajectory.json")).tokens.length, 3);
});

test("loom trace: user errors are one line, exit 2", () => {
  const both = loom(
    "trace",
    "--model",
    model,
    "--tokens",
    join(dir, "tokens.json"),
    "--prompt",
    "a",
    "--out",
    join(dir, "x"),
  );
  assert.equal(both.status, 2);
  assert.match(both.stderr, /exactly one of --tokens/);
  writeFileSync(join(dir, "bad.json"), JSON.stringify([[1, 999]]));
  const bad = loom(
    "trace",
    "--model",
    model,
    "--tokens",
    join(dir, "bad.json"),
    "--out",
    join(dir, "x"),
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /token id 999 is outside the vocabulary/);
});
