// `loom train`, `loom eval`, `loom data` end to end through bin/loom.js, and their errors.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const bin = new URL("../bin/loom.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "loom-train-cli-"));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function loom(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: "utf8",
    env: { ...process.env, LOOM_BACKEND: "js" },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tiny = ["--n_embd", "32", "--batch-size", "4", "--count", "64", "--eval-every", "100"];

function losses(run: string): number[] {
  return readFileSync(join(run, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.includes('"type":"step"'))
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

test("loom data writes a task split as JSONL", () => {
  const out = join(dir, "parity-test.jsonl");
  const r = loom("data", "--task", "parity", "--split", "test", "--count", "12", "--out", out);
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(out, "utf8").trim().split("\n");
  assert.equal(lines.length, 12);
  const ex = JSON.parse(lines[0]) as { prompt: string; answer: string; difficulty: number };
  assert.equal(typeof ex.prompt, "string");
  assert.equal(typeof ex.difficulty, "number");
});

test("loom train --task, loom eval --json, and --resume reproducing the straight run", () => {
  const a = join(dir, "a");
  let r = loom("train", "--task", "parity", "--max-steps", "4", "--out", a, "--quiet", ...tiny);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors"]) {
    assert.ok(existsSync(join(a, f)), f);
  }
  const config = JSON.parse(readFileSync(join(a, "config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  assert.equal(config.attention_window, 2, "parity's default model has a sliding window of 2");
  const b = join(dir, "b");
  r = loom(
    "train",
    "--task",
    "parity",
    "--max-steps",
    "4",
    "--stop-after",
    "2",
    "--out",
    b,
    "--quiet",
    ...tiny,
  );
  assert.equal(r.code, 0, r.stderr);
  r = loom("train", "--resume", b, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(losses(b), losses(a));
  assert.deepEqual(
    readFileSync(join(b, "model.safetensors")),
    readFileSync(join(a, "model.safetensors")),
  );

  r = loom("train", "--task", "parity", "--max-steps", "4", "--out", a, "--quiet");
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /already holds a training run/);

  const evalArgs = [
    "--model",
    a,
    "--data",
    join(a, "test.jsonl"),
    "--steps",
    "1,2",
    "--limit",
    "8",
  ];
  const json = join(dir, "eval.json");
  const preds = join(dir, "predictions.jsonl");
  r = loom("eval", ...evalArgs, "--json", json, "--predictions", preds, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, "utf8")) as { results: Record<string, unknown>[] };
  assert.ok(out.results.some((x) => x.difficulty === null && x.steps === 2));
  for (const row of out.results) {
    assert.deepEqual(Object.keys(row).sort(), [
      "accuracy",
      "count",
      "difficulty",
      "meanSteps",
      "steps",
    ]);
  }
  const lines = readFileSync(preds, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2 * 8, "one line per (r, example)");
  for (const r of [1, 2]) {
    const at = lines.filter((l) => l.steps === r);
    const all = out.results.find((x) => x.difficulty === null && x.steps === r);
    assert.equal(at.filter((l) => l.correct === true).length / 8, all?.accuracy);
    for (const l of at) {
      assert.deepEqual(Object.keys(l), ["steps", "difficulty", "prompt", "answer", "prediction", "correct", "tokenSteps"]); // prettier-ignore
      assert.equal(l.correct, l.prediction === l.answer);
    }
  }
  const oneJson = join(dir, "eval-one-thread.json");
  r = loom("eval", ...evalArgs, "--workers", "1", "--json", oneJson, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(readFileSync(oneJson, "utf8")), out, "one thread, the same rows");
  r = loom("eval", ...evalArgs, "--workers", "0");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--workers must be >= 1, got 0/);
});

test("--workers 2: a data-parallel run resumes bit for bit and trains what one thread trains", () => {
  const args = ["--task", "parity", "--max-steps", "4", ...tiny, "--batch-size", "9"];
  const a = join(dir, "dp-a");
  let r = loom("train", ...args, "--workers", "2", "--out", a);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /threads: 2, each computing 5 of the batch's 9 examples \(data parallel\)/,
  );
  const b = join(dir, "dp-b");
  r = loom("train", ...args, "--workers", "2", "--stop-after", "2", "--out", b, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  r = loom("train", "--resume", b, "--quiet"); // the saved recipe keeps the 2 threads
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(losses(b), losses(a));
  assert.deepEqual(
    readFileSync(join(b, "model.safetensors")),
    readFileSync(join(a, "model.safetensors")),
  );
  const one = join(dir, "dp-one");
  r = loom("train", ...args, "--workers", "1", "--out", one, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  const [two, single] = [losses(a), losses(one)];
  assert.equal(two.length, 4);
  two.forEach((l, i) => {
    assert.ok(Math.abs(l - single[i]) <= 1e-5 * single[i], `step ${i + 1}: ${l} vs ${single[i]}`);
  });
});

test("JSONL data that reads as a scan gets a sliding window, said in the banner", () => {
  const data = join(dir, "parity-train.jsonl");
  let r = loom("data", "--task", "parity", "--split", "train", "--count", "40", "--out", data);
  assert.equal(r.code, 0, r.stderr);
  const config = (run: string) =>
    JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as Record<string, unknown>;
  const scan = join(dir, "scan");
  r = loom("train", "--data", data, "--max-steps", "1", "--out", scan, ...tiny);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout + r.stderr,
    /attention: a sliding window of 2 \(a scan: the prompt grows by 1 character/,
  );
  assert.equal(config(scan).attention_window, 2);
  const full = join(dir, "full");
  r = loom(
    "train",
    "--data",
    data,
    "--max-steps",
    "1",
    "--out",
    full,
    "--attention_window",
    "0",
    ...tiny,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /attention:/);
  assert.equal(config(full).attention_window, undefined, "full attention is the reference's");
  // the windowed model is meant for longer inputs: its context is 8x the longest example (14
  // tokens: <bos>, 10 bits, <sep>, answer, <eos>), rounded up to 16; full attention's 2x (min 64)
  assert.equal(config(scan).block_size, 112);
  assert.equal(config(full).block_size, 64);

  const long = join(dir, "long.jsonl");
  writeFileSync(
    long,
    `${JSON.stringify({ prompt: "1".repeat(300), answer: "0", difficulty: 300 })}\n`,
  );
  r = loom("eval", "--model", full, "--data", long, "--steps", "1", "--quiet");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /1 of 1 examples are longer than the model's context \(block_size 64\) and count as wrong \(from difficulty 300\)/,
  );
});

test("data of long levels gets two iterations per level and a window of 7, unless given others", () => {
  const settings = (run: string) => {
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as {
      attention_window?: number;
    };
    const state = JSON.parse(readFileSync(join(run, "trainer-state.json"), "utf8")) as {
      recipe: { depthPerDifficulty: number };
    };
    return { window: config.attention_window, perHop: state.recipe.depthPerDifficulty };
  };
  const train = (out: string, ...args: string[]) => {
    const r = loom("train", "--max-steps", "1", "--out", join(dir, out), ...tiny, ...args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout + r.stderr;
  };
  // pointer-chasing adds 8 characters per hop: the rule for long levels (src/train/window.ts)
  const data = join(dir, "chase.jsonl");
  const r = loom(
    "data",
    "--task",
    "pointer-chasing",
    "--split",
    "train",
    "--count",
    "400",
    "--out",
    data,
  );
  assert.equal(r.code, 0, r.stderr);
  for (const [out, args] of [
    ["chase", ["--task", "pointer-chasing"]],
    ["chase-jsonl", ["--data", data]],
  ] as const) {
    const log = train(out, ...args);
    assert.match(
      log,
      /depth: 2 iterations per difficulty level \(long levels: the prompt grows by 8 characters/,
    );
    assert.match(
      log,
      /attention: a sliding window of 7 \(a scan of long levels: the prompt grows by 8/,
    );
    assert.deepEqual(settings(join(dir, out)), { window: 7, perHop: 2 }, out);
  }
  const given = train("chase-w9", "--task", "pointer-chasing", "--attention-window", "9");
  assert.doesNotMatch(given, /attention:/);
  assert.deepEqual(settings(join(dir, "chase-w9")), { window: 9, perHop: 2 });
  const one = train("chase-c1", "--task", "pointer-chasing", "--depthPerDifficulty", "1");
  assert.doesNotMatch(one, /depth: /);
  assert.deepEqual(settings(join(dir, "chase-c1")), { window: 7, perHop: 1 });
});

test("--abacus_places: digits from the tokenizer, exact resume, and eval and generate run it", () => {
  const run = join(dir, "abacus");
  const abacus = ["--task", "addition", "--max-steps", "4", "--abacus_places", "20", ...tiny];
  let r = loom("train", "--out", run, ...abacus);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /model: width 32, .*, Abacus places 20/);
  const resumed = join(dir, "abacus-resumed");
  r = loom("train", "--out", resumed, "--stop-after", "2", "--quiet", ...abacus);
  assert.equal(r.code, 0, r.stderr);
  r = loom("train", "--resume", resumed, "--quiet");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    readFileSync(join(resumed, "model.safetensors")),
    readFileSync(join(run, "model.safetensors")),
    "the places' random offsets are drawn per step: a resumed run is the straight one",
  );
  const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as Record<string, unknown>; // prettier-ignore
  const tokenizer = JSON.parse(readFileSync(join(run, "tokenizer.json"), "utf8")) as {
    chars: string[];
  };
  const digitIds = Array.from({ length: 10 }, (_, d) => 5 + tokenizer.chars.indexOf(String(d))); // 5 specials first
  assert.equal(config.abacus_places, 20);
  assert.equal(
    config.rotary_positions,
    "place",
    "places named, rotary positions still those chosen for numbers",
  );
  assert.equal(config.rotary_pct, undefined);
  assert.deepEqual(config.abacus_digits, digitIds);
  r = loom("eval", "--model", run, "--task", "addition", "--count", "2", "--steps", "1,2", "--quiet"); // prettier-ignore
  assert.equal(r.code, 0, r.stderr);
  r = loom("generate", "--model", run, "--prompt", "12+34=", "--bos", "--sep", "--steps", "2", "--max-new-tokens", "3"); // prettier-ignore
  assert.equal(r.code, 0, r.stderr);
  const words = join(dir, "words.jsonl");
  writeFileSync(words, `${JSON.stringify({ prompt: "ab", answer: "ba" })}\n`);
  r = loom("train", "--data", words, "--max-steps", "1", "--out", join(dir, "no-digits"), "--abacus_places", "8"); // prettier-ignore
  assert.equal(r.code, 2);
  assert.match(r.stderr, /abacus_places needs digits, and the data has none/);
});

test("addition gets Abacus places turning RoPE by default; --rotary_positions index, --abacus_places 0 opt out", () => {
  const config = (run: string) =>
    JSON.parse(readFileSync(join(run, "config.json"), "utf8")) as Record<string, unknown>;
  const sums = ["--task", "addition", "--max-steps", "1", ...tiny];
  const train = (out: string, ...flags: string[]) => {
    const r = loom("train", "--out", join(dir, out), ...flags, ...sums);
    assert.equal(r.code, 0, r.stderr);
    return { log: r.stdout + r.stderr, config: config(join(dir, out)) };
  };
  const chosen = train("sums");
  assert.match(chosen.log, /numbers: Abacus places \d+, rotary positions from the places \(the answer is a number/); // prettier-ignore
  assert.match(chosen.log, /model: .*, rotary positions from Abacus places/);
  assert.equal(typeof chosen.config.abacus_places, "number");
  assert.equal(chosen.config.rotary_positions, "place");
  assert.equal(chosen.config.rotary_pct, undefined, "places that turn RoPE turn all of it");
  for (const flags of [
    ["--rotary_positions", "index"],
    ["--rotary_pct", "0"],
  ]) {
    const none = train(`sums-none${flags[0].slice(1)}`, ...flags);
    assert.match(none.log, /numbers: Abacus places \d+, no rotary positions/, flags.join(" "));
    assert.equal(none.config.rotary_positions, undefined, flags.join(" "));
    assert.equal(none.config.rotary_pct, 0, flags.join(" "));
  }
  const window = train("sums-window", "--attention_window", "3");
  assert.match(window.log, /model: .*, attention window 3 places, Abacus places/);
  assert.equal(window.config.attention_window, 3);
  const byIndex = train("sums-index", "--rotary_positions", "index", "--rotary_pct", "1");
  assert.equal(typeof byIndex.config.abacus_places, "number");
  assert.equal(byIndex.config.rotary_positions, undefined);
  assert.equal(byIndex.config.rotary_pct, undefined);
  const plain = train("sums-plain", "--abacus_places", "0");
  assert.doesNotMatch(plain.log, /numbers: /);
  assert.equal(plain.config.abacus_places, undefined);
  assert.equal(plain.config.rotary_positions, undefined);
  assert.equal(plain.config.rotary_pct, undefined);
  assert.equal(plain.config.rope_base, 50000);
});

test("--min-steps holds a run past its time budget until it has trained them, and is saved", () => {
  const run = join(dir, "floor");
  const r = loom("train", "--task", "parity", "--out", run, ...tiny, "--time-budget", "1s", "--min-steps", "150"); // prettier-ignore
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /schedule: 150 steps, the --min-steps floor/);
  const state = JSON.parse(readFileSync(join(run, "trainer-state.json"), "utf8")) as {
    step: number;
    totalSteps: number;
    finished: boolean;
    minSteps: number;
  };
  assert.deepEqual(
    [state.step, state.totalSteps, state.finished, state.minSteps],
    [150, 150, true, 150],
  );
  assert.equal(losses(run).length, 150);
});

test("a bad JSONL line fails with file:line and writes nothing", () => {
  const data = join(dir, "bad.jsonl");
  writeFileSync(data, '{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+2=", "answer": ""}\n');
  const out = join(dir, "bad-run");
  const r = loom("train", "--data", data, "--max-steps", "2", "--out", out, "--quiet");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.jsonl:2: "answer" is empty/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.ok(!existsSync(out));
});

test("unknown flags, settings and a config that does not fit are one-line errors", () => {
  let r = loom("eval", "--model", dir, "--data", "x.jsonl", "--bogus", "1");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown flag --bogus/);
  r = loom(
    "train",
    "--task",
    "parity",
    "--out",
    join(dir, "x"),
    "--max-steps",
    "1",
    "--bogus",
    "1",
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown setting "bogus"/);
  r = loom(
    "train",
    "--task",
    "parity",
    "--out",
    join(dir, "y"),
    "--max-steps",
    "1",
    "--block_size",
    "8",
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /block_size/);
  r = loom(
    "train",
    "--task",
    "parity",
    "--out",
    join(dir, "z"),
    "--max-steps",
    "1",
    "--n_heads",
    "5",
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /n_heads/);
  r = loom("train", "--task", "parity", "--out", join(dir, "w"), "--max-steps", "1", "--workers", "1.5"); // prettier-ignore
  assert.equal(r.code, 2);
  assert.match(r.stderr, /field "workers" must be an integer >= 0/);
  r = loom("train", "--task", "parity", "--out", join(dir, "v"), "--max-steps", "5", "--min-steps", "10"); // prettier-ignore
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--min-steps 10 is more than --max-steps 5/);
  assert.ok(!existsSync(join(dir, "v")), "nothing written");
});
