// `loom generate` end to end on a tiny random model directory with a char tokenizer.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BOS_ID, EOS_ID, SEP_ID, buildCharTokenizer } from "../src/data/tokenizer.ts";
import { presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { saveModel } from "../src/node/model-io.ts";
import { Rng } from "../src/tensor/random.ts";

const root = mkdtempSync(join(tmpdir(), "loom-generate-"));
after(() => {
  rmSync(root, { recursive: true, force: true });
});
const dir = join(root, "model");
const tok = buildCharTokenizer(["abcdefghijklmnopqrstuvwxyz .,"]);
saveModel(dir, initModel({ ...presets.tiny, vocabSize: 40, paddedVocabSize: 40 }, new Rng(2)), {
  extraFiles: { "tokenizer.json": JSON.stringify(tok.toJSON()) },
});
const tokens = join(root, "tokens.json");
writeFileSync(
  tokens,
  JSON.stringify([
    [5, 6, 7],
    [8, 9, 10, 11, 12],
  ]),
);

function loom(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["bin/loom.js", "generate", ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronous, so that the error cases run side by side. */
function loomAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/loom.js", "generate", ...args]);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => {
      resolve({ status, stderr });
    });
  });
}

interface Out {
  outputs: { tokens: number[]; steps: number[]; text?: string }[];
}

test("--tokens with rows of different lengths, kl exits: the JSON shape", () => {
  const out = join(root, "out.json");
  const args = ["--model", dir, "--tokens", tokens, "--max-new-tokens", "5", "--steps", "8"];
  const r = loom(...args, "--exit", "kl", "--exit-threshold", "0.01", "--json", out);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(readFileSync(out, "utf8")) as Out;
  assert.equal(json.outputs.length, 2);
  for (const o of json.outputs) {
    assert.equal(o.tokens.length, 5);
    assert.equal(o.steps.length, 5);
    assert.ok(o.steps.every((s) => Number.isInteger(s) && s >= 1 && s <= 8));
    assert.equal(typeof o.text, "string");
  }
});

test("--prompt with sampling and --stream prints annotated tokens", () => {
  const r = loom(
    ...["--model", dir, "--prompt", "hello", "--max-new-tokens", "4", "--steps", "3"],
    ...["--temperature", "0.8", "--top-k", "5", "--seed", "3", "--warm-start", "--stream"],
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /[₀-₉]/u, "step counts as subscripts");
  assert.match(r.stderr, /4 tokens, mean recurrences 3\.00/);
});

test("--prompt --bos --sep asks as loom train frames a prompt; every decoder stops at <eos>", () => {
  // a model whose head scores <eos> three times as high as token 13: greedy decoding of "abc"
  // emits it part way, with tokens after it when nothing stops there
  const eosDir = join(root, "eos");
  const model = initModel({ ...presets.tiny, vocabSize: 40, paddedVocabSize: 40 }, new Rng(2));
  const { wte } = model.params; // (V, C), tied to the head
  const C = wte.shape[1];
  for (let c = 0; c < C; c++) wte.data[EOS_ID * C + c] = 3 * wte.data[13 * C + c];
  saveModel(eosDir, model, { extraFiles: { "tokenizer.json": JSON.stringify(tok.toJSON()) } });
  const framed = join(root, "framed.json");
  writeFileSync(framed, JSON.stringify([[BOS_ID, ...tok.encode("abc"), SEP_ID]]));
  const common = ["--model", eosDir, "--max-new-tokens", "12", "--steps", "6"];
  const tokensOf = (...extra: string[]): number[] => {
    const r = loom(...common, "--init-state", "zero", ...extra);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as Out).outputs[0].tokens;
  };
  const all = tokensOf("--tokens", framed);
  assert.equal(all.length, 12);
  const eos = all.indexOf(EOS_ID);
  assert.ok(eos > 0 && eos < all.length - 1, `tokens ${all.join(",")}`);
  const answer = all.slice(0, eos + 1);
  const asked = ["--prompt", "abc", "--bos", "--sep"];
  assert.deepEqual(tokensOf(...asked), answer);
  const speculative = ["--sampler", "speculative", "--draft-steps", "2", "--lookahead", "3"];
  assert.deepEqual(tokensOf(...asked, ...speculative), answer);
  assert.deepEqual(tokensOf(...asked, "--sampler", "diffusion", "--inner-recurrence", "6"), answer);
});

test("--prompt without --sep to a model trained on examples: a note on how to ask it", () => {
  const trained = join(root, "trained");
  const state = { data: { kind: "task", task: "addition", count: 10, seed: 0 } };
  saveModel(
    trained,
    initModel({ ...presets.tiny, vocabSize: 40, paddedVocabSize: 40 }, new Rng(2)),
    {
      extraFiles: {
        "tokenizer.json": JSON.stringify(tok.toJSON()),
        "trainer-state.json": JSON.stringify(state),
      },
    },
  );
  const args = ["--prompt", "abc", "--max-new-tokens", "2", "--steps", "2"];
  const note = /add --bos --sep to ask it/;
  const unframed = loom("--model", trained, ...args);
  assert.equal(unframed.status, 0, unframed.stderr);
  assert.match(unframed.stderr, note);
  assert.doesNotMatch(loom("--model", trained, ...args, "--bos", "--sep").stderr, note);
  assert.doesNotMatch(loom("--model", dir, ...args).stderr, note, "no trainer state: no note");
});

test("bad flags exit non-zero with a one-line message", async () => {
  const base = ["--model", dir, "--max-new-tokens", "2", "--steps", "2"];
  const cases: [string[], RegExp][] = [
    [[...base, "--tokens", tokens, "--exit", "bogus"], /--exit must be one of/],
    [
      [...base, "--tokens", tokens, "--prompt", "x"],
      /exactly one of --tokens FILE.json and --prompt TEXT/,
    ],
    [[...base, "--prompt", "ab", "--greedy", "--top-p", "0.5"], /--greedy excludes/],
    [[...base, "--prompt", "ab", "--exit-threshold", "0.1"], /--exit-threshold needs --exit/],
    [["--model", dir, "--prompt", "ab", "--steps", "2"], /missing required flag --max-new-tokens/],
    [[...base.slice(0, 2), "--prompt", "ab", "--max-new-tokens", "99", "--steps", "1"], /exceed the context/], // prettier-ignore
  ];
  const results = await Promise.all(cases.map(([args]) => loomAsync(args)));
  results.forEach((r, i) => {
    const [args, message] = cases[i];
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  });
});

test("--sampler speculative and diffusion give plain greedy's tokens (zero state, exact)", () => {
  const base = ["--model", dir, "--tokens", tokens, "--max-new-tokens", "5", "--steps", "6"];
  const run = (...extra: string[]): Out => {
    const r = loom(...base, "--init-state", "zero", ...extra);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Out;
  };
  const plain = run();
  const speculative = run("--sampler", "speculative", "--draft-steps", "2", "--lookahead", "3");
  const diffusion = run("--sampler", "diffusion", "--inner-recurrence", "6");
  for (const other of [speculative, diffusion]) {
    assert.deepEqual(
      other.outputs.map((o) => o.tokens),
      plain.outputs.map((o) => o.tokens),
    );
  }
  assert.ok(speculative.outputs.every((o) => o.steps.length === o.tokens.length));
});
