// Smoke test of `loom bench` on configs/tiny.json with a tiny batch and one repetition: the JSON
// contract's shape (train through the real executable, generate in-process), and one-line
// errors with exit code 2 for bad invocations (in-process: they fail before any work).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { main } from "../cli/main.ts";

const bin = new URL("../bin/loom.js", import.meta.url).pathname;
const tiny = new URL("../configs/tiny.json", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "loom-bench-"));
after(() => {
  rmSync(work, { recursive: true, force: true });
});

const small = ["--config", tiny, "--reps", "1", "--warmup", "0"];

/** `loom bench ...args` in-process: exit code and what it printed. */
async function bench(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await main(["bench", ...args]), out, err };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

test("loom bench train writes {stepMs, backend, threads} and prints a readable line", () => {
  const out = join(work, "train.json");
  const args = ["--batch", "2", "--seq", "8", "--no-grad-steps", "1", "--grad-steps", "1"];
  const r = spawnSync(process.execPath, [bin, "bench", "train", ...small, ...args, "--json", out], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^loom bench train: [\d.]+ ms\/step median/);
  const j = JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>;
  assert.equal(typeof j.stepMs, "number");
  assert.ok((j.stepMs as number) > 0);
  assert.ok(j.backend === "native" || j.backend === "js", String(j.backend));
  assert.ok(Number.isInteger(j.threads) && (j.threads as number) >= 1);
  assert.ok(Number.isFinite(j.lossFirst) && Number.isFinite(j.peakRssMB));
});

test("loom bench generate writes {tokensPerSec, prefillMs, backend, threads}", async () => {
  const out = join(work, "generate.json");
  const r = await bench("generate", ...small, "--prompt-len", "3", "--new-tokens", "3", "--steps", "2", "--json", out); // prettier-ignore
  assert.equal(r.code, 0, r.err.join("\n"));
  assert.match(r.out.join("\n"), /^loom bench generate: [\d.]+ tok\/s/);
  const j = JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>;
  assert.ok((j.tokensPerSec as number) > 0 && (j.prefillMs as number) > 0);
  assert.ok(typeof j.backend === "string" && Number.isInteger(j.threads));
});

test("bad invocations fail with one line and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["train", "--config", tiny, "--bogus", "1"], /unknown flag --bogus/],
    [["train", "--config", tiny, "--prompt-len", "4"], /--prompt-len does not apply/],
    [["fly", "--config", tiny], /--what must be one of train\|generate\|gemm/],
    [["--config", tiny], /name a benchmark/],
    [["train", "--batch", "2"], /missing required flag --config/],
    [["train", "--config", tiny, "--seq", "999"], /exceeds block_size/],
    [["train", "--config", tiny, "--seq", "8", "--reps", "0"], /--reps must be at least 1/],
    [["generate", "--config", tiny, "--new-tokens", "1"], /--new-tokens must be >= 2/],
    [["gemm", "--threads", "0"], /--threads must list/],
  ];
  for (const [args, want] of cases) {
    const r = await bench(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err.join("\n")}`);
    assert.equal(r.err.length, 1, r.err.join("\n"));
    assert.equal(r.err[0].split("\n").length, 1, r.err[0]);
    assert.match(r.err[0], want);
  }
});
