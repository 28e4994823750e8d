// Generation speed on a random-weight model: tokens/s at r = 4, 8, 32 with fixed depth and with
// kl exits (mean steps saved), speculative and diffusion samplers vs plain decoding (with their
// agreement), and KV-cache memory full vs shared.
//
//   node --import tsx bench/generate.bench.ts [CONFIG.json] [--tokens N] [--preset NAME]
//
// CONFIG.json is a RavenConfig (snake_case, as a model's config.json); default: presets.small.
// Random weights barely converge, so kl exits use a loose threshold (1e-2) to show the mechanics.
import { readFileSync } from "node:fs";
import { backend } from "../src/backend/select.ts";
import { selectBackend } from "../src/node/native.ts";
import { generateDiffusion } from "../src/generate/diffusion.ts";
import { generateAll } from "../src/generate/generate.ts";
import { cacheFor } from "../src/generate/kv-cache.ts";
import { generateSpeculative } from "../src/generate/speculative.ts";
import { configFromJson } from "../src/model/config-json.ts";
import { type ModelConfig, type PresetName, presets } from "../src/model/config.ts";
import { initModel } from "../src/model/model.ts";
import { Rng } from "../src/tensor/random.ts";

selectBackend(); // native when built (LOOM_BACKEND=js|native overrides)
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const file = args.find((a, i) => !a.startsWith("--") && !(args[i - 1] ?? "").startsWith("--"));
const config: ModelConfig = file
  ? configFromJson(JSON.parse(readFileSync(file, "utf8")), file)
  : presets[(flag("preset") ?? "small") as PresetName];
const N = Number(flag("tokens") ?? 16);
const model = initModel(config, new Rng(0));
const prompt = Array.from({ length: 8 }, (_, i) => (i * 7 + 3) % config.vocabSize);

const seconds = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
  const t0 = performance.now();
  const out = await fn();
  return [out, (performance.now() - t0) / 1000];
};
const agreement = (a: number[], b: number[]): number =>
  a.filter((t, i) => t === b[i]).length / Math.max(1, b.length);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

console.log(
  `# backend ${backend().name}, C=${config.nEmbd}, layers ${config.nLayersInPrelude}/${config.nLayersInRecurrentBlock}/${config.nLayersInCoda}, V=${config.paddedVocabSize}, prompt ${prompt.length}, ${N} new tokens`,
);
await generateAll(model, [prompt], { maxNewTokens: 4, numSteps: 4, exit: "kl" }); // JIT warm-up
console.log("\n## plain decoding (greedy, s_0 = 0)");
console.log("r  | mode       | tok/s  | mean steps | steps saved");
const plain = new Map<number, number[]>();
const plainRate = new Map<number, number>();
for (const r of [4, 8, 32]) {
  const base = { maxNewTokens: N, numSteps: r, init: "zero" as const };
  const [fixed, tf] = await seconds(() => generateAll(model, [prompt], base));
  plain.set(r, fixed.tokens[0]);
  plainRate.set(r, N / tf);
  console.log(`${r.toString().padEnd(2)} | fixed      | ${(N / tf).toFixed(1).padStart(6)} | ${r}`);
  const kl = { ...base, exit: "kl" as const, exitThreshold: 1e-2 };
  const [ex, te] = await seconds(() => generateAll(model, [prompt], kl));
  const m = mean(ex.steps[0]);
  const saved = `${(r - m).toFixed(2)} (${((100 * (r - m)) / r).toFixed(0)}%)`;
  console.log(`${r.toString().padEnd(2)} | kl 1e-2    | ${(N / te).toFixed(1).padStart(6)} | ${m.toFixed(2)} | ${saved}`); // prettier-ignore
}

console.log("\n## samplers vs plain decoding at r = 8");
const r = 8;
const ref = plain.get(r) ?? [];
const base = plainRate.get(r) ?? 1;
for (const [draftSteps, lookahead] of [
  [2, 4],
  [4, 8],
] as const) {
  const [s, t] = await seconds(() =>
    generateSpeculative(model, prompt, { maxNewTokens: N, numSteps: r, draftSteps, lookahead }),
  );
  console.log(
    `speculative draft ${draftSteps} lookahead ${lookahead}: ${(N / t).toFixed(1)} tok/s (${((N / t / base) * 1).toFixed(2)}x), accepted ${s.accepted}/${s.drafted}, agreement ${agreement(s.tokens, ref).toFixed(2)}`,
  );
}
for (const inner of [1, 2, 4]) {
  const [d, t] = await seconds(() =>
    generateDiffusion(model, prompt, { maxNewTokens: N, numSteps: r, innerRecurrence: inner }),
  );
  console.log(
    `diffusion inner ${inner}: ${(N / t).toFixed(1)} tok/s (${(N / t / base).toFixed(2)}x), ${d.outerSteps} passes, mean iterations ${mean(d.iterations).toFixed(1)}, agreement ${agreement(d.tokens, ref).toFixed(2)}`,
  );
}

console.log("\n## KV-cache memory at r = 32 (prompt + new tokens, float32)");
for (const budget of [null, 8, 4, 1]) {
  const cache = cacheFor(config, 1, budget ? { sharing: { kind: "modulo", budget } } : {});
  await generateAll(model, [prompt], { maxNewTokens: N, numSteps: 32, init: "zero", cache });
  const m = cache.memory();
  const name = budget === null ? "full" : `shared K=${budget}`;
  console.log(`${name.padEnd(12)} ${(m.bytes / 2 ** 20).toFixed(2)} MiB (core ${(m.coreBytes / 2 ** 20).toFixed(2)} MiB), ${m.slots} slots`); // prettier-ignore
}
