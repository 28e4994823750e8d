// Batch-1 cached greedy decoding speed: tokens/s at r = 4, 8, 32 and prefill ms, for the
// inference blocks (fast-block.ts) and the Tensor path (the spec), measured alternately so
// both see the same machine load; medians of the repetitions. The tokens of the two paths are
// compared first (they must be identical).
//
//   node --import tsx bench/decode.bench.ts [CONFIG.json] [--prompt-len 32] [--tokens 64] [--reps 5]
//
// CONFIG.json: a RavenConfig (snake_case); default configs/bench.json, else presets.bench.
import { existsSync, readFileSync } from "node:fs";
import { generate } from "../src/generate/generate.ts";
import { configFromJson } from "../src/model/config-json.ts";
import { type ModelConfig, presets } from "../src/model/config.ts";
import { type RavenModel, initModel } from "../src/model/model.ts";
import { selectBackend } from "../src/node/native.ts";
import { Rng } from "../src/tensor/random.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const file = args.find((a, i) => !a.startsWith("--") && !(args[i - 1] ?? "").startsWith("--"));
const path = file ?? (existsSync("configs/bench.json") ? "configs/bench.json" : undefined);
const config: ModelConfig = path
  ? configFromJson(JSON.parse(readFileSync(path, "utf8")), path)
  : presets.bench;
const [P, N, reps] = [flag("prompt-len", 32), flag("tokens", 64), flag("reps", 5)];

const be = selectBackend();
const model = initModel(config, new Rng(0));
const prompt = Array.from({ length: P }, (_, i) => (i * 7 + 3) % config.vocabSize);

interface Run {
  tokens: number[];
  prefillMs: number;
  tokPerSec: number; // the N - 1 decoded tokens after the prefill's
}

async function run(m: RavenModel, r: number, fastBlocks: boolean): Promise<Run> {
  const tokens: number[] = [];
  const t0 = performance.now();
  let t1 = t0;
  const o = { maxNewTokens: N, numSteps: r, init: "zero" as const, fastBlocks };
  for await (const rec of generate(m, [prompt], o)) {
    tokens.push(rec.token);
    if (rec.index === 0) t1 = performance.now();
  }
  const t2 = performance.now();
  return { tokens, prefillMs: t1 - t0, tokPerSec: ((N - 1) * 1000) / (t2 - t1) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

console.log(
  `# backend ${be.name} (${be.threads} threads), C=${config.nEmbd}, H=${config.nHeads}, layers ${config.nLayersInPrelude}/${config.nLayersInRecurrentBlock}/${config.nLayersInCoda}, V=${config.paddedVocabSize}, prompt ${P}, ${N} new tokens, ${reps} reps, medians`,
);
console.log("r  | path   | tok/s  | prefill ms");
for (const r of [4, 8, 32]) {
  const [fast, plain] = [await run(model, r, true), await run(model, r, false)]; // warm-up
  if (fast.tokens.join() !== plain.tokens.join()) {
    throw new Error(`r=${r}: fast-block tokens differ from the Tensor path`);
  }
  const runs = { fast: [] as Run[], tensor: [] as Run[] };
  for (let i = 0; i < reps; i++) {
    runs.fast.push(await run(model, r, true));
    runs.tensor.push(await run(model, r, false));
  }
  for (const [name, rs] of Object.entries(runs)) {
    const rate = median(rs.map((x) => x.tokPerSec))
      .toFixed(1)
      .padStart(6);
    const pre = median(rs.map((x) => x.prefillMs)).toFixed(2);
    console.log(`${String(r).padEnd(2)} | ${name.padEnd(6)} | ${rate} | ${pre}`);
  }
}
