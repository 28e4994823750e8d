// `loom bench train|generate|gemm`: the native-backend benchmark contract, on random weights of a
// RavenConfig JSON. Prints a readable line and, with --json, writes the result object:
//   train    {"stepMs", "backend", "threads", ...}    median ms of forward + backward + AdamW
//   generate {"tokensPerSec", "prefillMs", "backend", "threads", ...}  batch-1 cached greedy
//   gemm     {"shapes": [{m, n, k, ..., gflops: {"1": x, "2": y}}], "stepGemmMs", ...}
// The timing logic (validate, warm up, median and spread) is src/node/bench.ts. Threads are fixed
// when the addon loads, so `bench gemm` runs one child process per LOOM_THREADS value.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { backend } from "../../src/backend/select.ts";
import { configFromJson } from "../../src/model/config-json.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import {
  type GemmBenchRow,
  benchGemmShape,
  benchGenerate,
  benchTrain,
  formatTrainProfile,
  peakRssMB,
  trainGemmShapes,
  validateGemm,
} from "../../src/node/bench.ts";
import { Rng } from "../../src/tensor/random.ts";
import { CliError, type FlagSpecs, type Flags, bool, list, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { readJson } from "../io.ts";

type Sub = "train" | "generate" | "gemm";
const subs: readonly Sub[] = ["train", "generate", "gemm"];

const flags: FlagSpecs = {
  what: { type: "string", help: "the benchmark (or as the bare first argument)", choices: subs },
  config: {
    type: "string",
    help: "RavenConfig JSON (config.json form); gemm: default configs/bench.json",
  },
  batch: { type: "int", help: "train, gemm: batch rows B (default 16)" },
  seq: { type: "int", help: "train, gemm: tokens per row S (default 128)" },
  "no-grad-steps": { type: "int", help: "train, gemm: recurrences without gradient (default 4)" },
  "grad-steps": { type: "int", help: "train, gemm: recurrences with gradient (default 2)" },
  "prompt-len": { type: "int", help: "generate: prompt tokens P (default 32)" },
  "new-tokens": { type: "int", help: "generate: new tokens N >= 2, prefill's included (default 64)" }, // prettier-ignore
  steps: { type: "int", help: "generate: recurrences r per token (default: mean_recurrence)" },
  reps: { type: "int", help: "timed repetitions (default: train 10, generate 5, gemm 5)" },
  warmup: { type: "int", help: "untimed warm-up repetitions (default: train 2, generate 1)" },
  profile: { type: "boolean", help: "train: per-kernel breakdown of 3 extra steps" },
  threads: { type: "list", help: "gemm: thread counts, one child process each (default 1,2)" },
  "min-ms": { type: "number", help: "gemm: minimum ms per timed repetition (default 100)" },
  json: { type: "string", help: "write the result JSON here" },
};

/** Which flags each benchmark reads; any other given flag is an error. */
const accepts: Record<Sub, readonly string[]> = {
  train: ["config", "batch", "seq", "no-grad-steps", "grad-steps", "reps", "warmup", "profile"],
  generate: ["config", "prompt-len", "new-tokens", "steps", "reps", "warmup"],
  gemm: ["config", "batch", "seq", "no-grad-steps", "grad-steps", "reps", "threads", "min-ms"],
};

export const benchCommand: Command = {
  name: "bench",
  positional: "what",
  summary: "benchmarks on random weights: train step, cached generation, GEMM",
  usage:
    "loom bench train --config FILE.json --batch B --seq S --no-grad-steps n --grad-steps k [--profile] --json OUT.json\n" +
    "       loom bench generate --config FILE.json --prompt-len P --new-tokens N --steps R --json OUT.json\n" +
    "       loom bench gemm [--config FILE.json --batch B --seq S] [--threads 1,2] --json OUT.json",
  flags,
  async run({ flags: f }) {
    const what = str(f, "what") as Sub | undefined;
    if (what === undefined) {
      throw new CliError(`loom bench: name a benchmark: loom bench ${subs.join("|")} [flags]`);
    }
    for (const [name, value] of Object.entries(f)) {
      if (value === undefined || name === "what" || name === "json") continue;
      if (!accepts[what].includes(name)) {
        throw new CliError(`loom bench ${what}: --${name} does not apply (see loom bench --help)`);
      }
    }
    const result = await runBench(what, f);
    const out = str(f, "json");
    if (out !== undefined) writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  },
};

const intOr = (f: Flags, name: string, dflt: number): number => num(f, name) ?? dflt;

function positive(f: Flags, name: string, dflt: number): number {
  const v = intOr(f, name, dflt);
  if (v < 1) throw new CliError(`loom bench: --${name} must be at least 1, got ${v}`);
  return v;
}

function readConfig(f: Flags, what: Sub): ModelConfig {
  const dflt = fileURLToPath(new URL("../../configs/bench.json", import.meta.url));
  const path = str(f, "config") ?? (what === "gemm" ? dflt : undefined);
  if (path === undefined) throw new CliError(`loom bench ${what}: missing required flag --config`);
  return configFromJson(readJson(path, "config"), path);
}

async function runBench(what: Sub, f: Flags): Promise<object> {
  const config = readConfig(f, what);
  const shape = (): { batch: number; seq: number; noGradSteps: number; gradSteps: number } => {
    const o = {
      batch: positive(f, "batch", 16),
      seq: positive(f, "seq", 128),
      noGradSteps: intOr(f, "no-grad-steps", 4),
      gradSteps: positive(f, "grad-steps", 2),
    };
    if (o.seq > config.blockSize) {
      throw new CliError(`loom bench: --seq ${o.seq} exceeds block_size ${config.blockSize}`);
    }
    return o;
  };
  switch (what) {
    case "train": {
      const s = shape();
      const reps = positive(f, "reps", 10);
      const r = benchTrain(config, { ...s, reps, warmup: intOr(f, "warmup", 2), profile: bool(f, "profile") }); // prettier-ignore
      console.log(
        `loom bench train: ${r.stepMs.toFixed(1)} ms/step median (${r.stepMsMin.toFixed(1)}..${r.stepMsMax.toFixed(1)}, ${reps} reps), ` +
          `B ${s.batch} x S ${s.seq}, ${s.noGradSteps}+${s.gradSteps} steps, ${r.backend}${r.isa ? `/${r.isa}` : ""} ${r.threads} thread(s), ` +
          `loss ${r.lossFirst.toFixed(3)} -> ${r.lossLast.toFixed(3)}, peak RSS ${r.peakRssMB.toFixed(0)} MB`,
      );
      if (r.profile) for (const line of formatTrainProfile(r.profile)) console.log(line);
      return r;
    }
    case "generate": {
      const promptLen = positive(f, "prompt-len", 32);
      const newTokens = intOr(f, "new-tokens", 64);
      if (newTokens < 2) throw new CliError(`loom bench generate: --new-tokens must be >= 2`);
      const steps = intOr(f, "steps", config.meanRecurrence);
      if (promptLen + newTokens > config.blockSize) {
        throw new CliError(`loom bench generate: --prompt-len + --new-tokens = ${promptLen + newTokens} exceeds block_size ${config.blockSize}`); // prettier-ignore
      }
      const reps = positive(f, "reps", 5);
      const r = await benchGenerate(config, { promptLen, newTokens, steps, reps, warmup: intOr(f, "warmup", 1) }); // prettier-ignore
      console.log(
        `loom bench generate: ${r.tokensPerSec.toFixed(1)} tok/s median (${r.tokensPerSecMin.toFixed(1)}..${r.tokensPerSecMax.toFixed(1)}, ${reps} reps), ` +
          `prefill ${r.prefillMs.toFixed(1)} ms, P ${promptLen}, N ${newTokens}, r ${steps}, ${r.backend}${r.isa ? `/${r.isa}` : ""} ${r.threads} thread(s)`,
      );
      return r;
    }
    case "gemm":
      return gemm(config, shape(), f);
    default:
      return what satisfies never;
  }
}

interface GemmResult {
  backend: string;
  isa?: string;
  threads: number[];
  config: string;
  shapes: (Omit<GemmBenchRow, "gflops" | "gflopsMedian" | "ms"> & {
    gflops: Record<string, number>;
    gflopsMedian: Record<string, number>;
  })[];
  stepGemmMs: Record<string, number>; // Σ calls · best time: a step's GEMM-only lower bound
  peakRssMB: number;
}

function gemm(
  config: ModelConfig,
  s: { batch: number; seq: number; noGradSteps: number; gradSteps: number },
  f: Flags,
): GemmResult {
  const threads = list(f, "threads") ?? [1, 2];
  if (threads.length === 0 || threads.some((t) => t < 1)) {
    throw new CliError("loom bench gemm: --threads must list thread counts >= 1");
  }
  const reps = positive(f, "reps", 5);
  const minMs = num(f, "min-ms") ?? 100;
  const be = backend();
  const isa = (be as { isa?: unknown }).isa;
  const configName = str(f, "config") ?? "configs/bench.json";
  const shapes = trainGemmShapes(config, s);
  const runs: Record<string, GemmBenchRow[]> = {};
  const child = process.env.LOOM_BENCH_CHILD === "1";
  if (child && (threads.length !== 1 || threads[0] !== be.threads)) {
    throw new CliError(`LOOM_THREADS=${threads.join()} gave a ${be.name} backend with ${be.threads} thread(s)`); // prettier-ignore
  }
  if (child || (threads.length === 1 && threads[0] === be.threads)) {
    const rng = new Rng(7);
    for (const { shape } of shapes) validateGemm(be, shape, rng); // before any timing
    runs[String(be.threads)] = shapes.map(({ shape, calls }) =>
      benchGemmShape(be, shape, calls, reps, minMs, rng),
    );
  } else {
    for (const t of threads) runs[String(t)] = gemmChild(t, f);
  }
  const rows = shapes.map(({ shape, calls }, i) => ({
    ...shape,
    calls,
    gflops: Object.fromEntries(Object.entries(runs).map(([t, r]) => [t, r[i].gflops])),
    gflopsMedian: Object.fromEntries(Object.entries(runs).map(([t, r]) => [t, r[i].gflopsMedian])),
  }));
  const stepGemmMs = Object.fromEntries(
    Object.entries(runs).map(([t, r]) => [t, r.reduce((a, x) => a + x.calls * x.ms, 0)]),
  );
  const result: GemmResult = {
    backend: be.name,
    ...(typeof isa === "string" ? { isa } : {}),
    threads,
    config: configName,
    shapes: rows,
    stepGemmMs,
    peakRssMB: peakRssMB(),
  };
  console.log(
    `loom bench gemm: ${be.name}${typeof isa === "string" ? `/${isa}` : ""}, ${rows.length} shapes of one training step (B ${s.batch} x S ${s.seq}), all checked against gemmNaive`,
  );
  for (const r of rows) {
    const op = `${r.transA ? "Aᵀ" : "A"}·${r.transB ? "Bᵀ" : "B"}${r.accumulate ? " +C" : ""}`;
    const gf = Object.entries(r.gflops).map(([t, g]) => `${t}T ${g.toFixed(0)}`).join(", "); // prettier-ignore
    console.log(`  ${`${r.m}x${r.k}x${r.n}`.padEnd(15)} ${op.padEnd(10)} x${String(r.calls).padEnd(4)} GFLOP/s ${gf}`); // prettier-ignore
  }
  const lb = Object.entries(stepGemmMs).map(([t, ms]) => `${t}T ${ms.toFixed(1)} ms`).join(", "); // prettier-ignore
  console.log(`  GEMMs of one step (lower bound): ${lb}`);
  return result;
}

/** `loom bench gemm --threads t` in a child with LOOM_THREADS=t; returns its rows. */
function gemmChild(t: number, f: Flags): GemmBenchRow[] {
  const dir = mkdtempSync(join(tmpdir(), "loom-bench-"));
  try {
    const out = join(dir, "gemm.json");
    const bin = fileURLToPath(new URL("../../bin/loom.js", import.meta.url));
    const pass = accepts.gemm.filter((n) => n !== "threads" && f[n] !== undefined);
    const args = pass.flatMap((n) => [`--${n}`, String(f[n])]);
    const r = spawnSync(
      process.execPath,
      [bin, "bench", "gemm", ...args, "--threads", String(t), "--json", out],
      { env: { ...process.env, LOOM_THREADS: String(t), LOOM_BENCH_CHILD: "1" }, encoding: "utf8" },
    );
    if (r.status !== 0) {
      const why = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ");
      throw new CliError(`loom bench gemm: the ${t}-thread run failed: ${why}`);
    }
    const res = JSON.parse(readFileSync(out, "utf8")) as GemmResult;
    if (res.threads.length !== 1 || res.threads[0] !== t) {
      throw new CliError(`loom bench gemm: LOOM_THREADS=${t} ran on ${res.threads.join()} threads`);
    }
    return res.shapes.map((x) => ({
      ...x,
      gflops: x.gflops[String(t)],
      gflopsMedian: x.gflopsMedian[String(t)],
      ms: (2 * x.m * x.n * x.k) / x.gflops[String(t)] / 1e6,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
