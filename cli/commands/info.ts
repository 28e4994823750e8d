// `loom info`: what a configuration costs: parameters, FLOPs and KV-cache bytes per token at r.
import { join } from "node:path";
import { configFromJson, configToJson } from "../../src/model/config-json.ts";
import { modelStats } from "../../src/model/stats.ts";
import { describeExtensions } from "../../src/model/config.ts";
import { backend } from "../../src/backend/select.ts";
import { loadNativeBackend } from "../../src/node/native.ts";
import { CliError, bool, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { readJson } from "../io.ts";

export const infoCommand: Command = {
  name: "info",
  summary: "config, parameter counts, FLOPs and KV-cache bytes per token at r recurrences",
  usage: "loom info (--model DIR | --config FILE.json) [--steps R] [--context L] [--json]",
  flags: {
    model: { type: "string", help: "model directory (reads its config.json)" },
    config: { type: "string", help: "a RavenConfig JSON file" },
    steps: { type: "int", help: "recurrences r (default: the config's mean_recurrence)" },
    context: { type: "int", help: "context length for the attention FLOPs (default: block_size)" },
    json: { type: "boolean", help: "print one JSON object instead of text", default: false },
  },
  async run({ flags }) {
    const dir = str(flags, "model");
    const file = str(flags, "config");
    if ((dir === undefined) === (file === undefined))
      throw new CliError("loom info: give exactly one of --model or --config");
    const path = dir !== undefined ? join(dir, "config.json") : (file as string);
    const config = configFromJson(readJson(path, "config"), path);
    const r = num(flags, "steps") ?? config.meanRecurrence;
    const context = num(flags, "context") ?? config.blockSize;
    const s = modelStats(config, r, context);
    const report = {
      config: configToJson(config),
      steps: r,
      context,
      uniqueParams: s.uniqueParams,
      materializedParams: s.materializedParams,
      forwardFlopsPerToken: s.forwardFlopsPerToken,
      kvBytesPerTokenF32: s.kvBytesPerToken,
      kvBytesPerTokenBf16: s.kvBytesPerToken / 2,
      backend: backend().name,
      threads: backend().threads,
      native: nativeStatus(),
    };
    if (bool(flags, "json")) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const c = config;
    console.log(`config        ${path}`);
    console.log(
      `shape         width ${c.nEmbd}, ${c.nHeads} heads, prelude/core/coda ${c.nLayersInPrelude}/${c.nLayersInRecurrentBlock}/${c.nLayersInCoda}, vocab ${c.paddedVocabSize}, mlp ${c.intermediateSize}, context ${c.blockSize}${describeExtensions(c)}`,
    );
    console.log(
      `recurrence   r = ${r} (mean_recurrence ${c.meanRecurrence}, backprop depth ${c.meanBackpropDepth}), injection ${c.injectionType}, state init ${c.stateInit}`,
    );
    console.log(
      `parameters    ${fmt(s.uniqueParams)} unique, ${fmt(s.materializedParams)} materialized at r = ${r} (${s.layersApplied} layers applied)`,
    );
    console.log(
      `compute       ${fmt(s.forwardFlopsPerToken)} forward FLOPs per token at r = ${r}, context ${context}`,
    );
    console.log(
      `kv cache      ${fmtBytes(s.kvBytesPerToken)} per token in f32, ${fmtBytes(s.kvBytesPerToken / 2)} in bf16 (${s.kvSlotsPerToken} slots)`,
    );
    console.log(
      `backend       ${backend().name}, ${backend().threads} thread(s); native: ${nativeStatus()}`,
    );
    await Promise.resolve();
  },
};

/** The native addon's kernel set, or why it is not available. */
function nativeStatus(): string {
  const native = loadNativeBackend();
  return "backend" in native ? `${native.backend.isa} kernels` : native.error;
}

function fmt(n: number): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [v, u] of units)
    if (n >= v) return `${(n / v).toFixed(2)} ${u} (${n.toLocaleString("en-US")})`;
  return String(n);
}

function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(2)} KiB`;
  return `${n} B`;
}
