/**
 * The one table between loom's parameter tree and Huginn's checkpoint keys
 * (`transformer.core_block.0.attn.Wqkv.weight`, …), so that safetensors written by the reference
 * load here and ours load there.
 */
import { type Tensor, parameter } from "../tensor/tensor.ts";
import { type ModelConfig, headDim } from "./config.ts";
import type { BlockParams, RavenParams } from "./params.ts";

/** A checkpoint that does not fit its config; the message names the checkpoint and tensor. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** Each block parameter: its key under the block prefix, its field, its shape. */
const blockLayout: {
  key: string;
  field: keyof BlockParams;
  shape: (c: ModelConfig) => number[];
}[] = [
  { key: "norm_1.weight", field: "norm1", shape: (c) => [c.nEmbd] },
  { key: "attn.Wqkv.weight", field: "wqkv", shape: (c) => [3 * c.nEmbd, c.nEmbd] },
  { key: "attn.qk_bias", field: "qkBias", shape: (c) => [2, 1, c.nHeads, headDim(c)] },
  { key: "attn.proj.weight", field: "proj", shape: (c) => [c.nEmbd, c.nEmbd] },
  { key: "norm_2.weight", field: "norm2", shape: (c) => [c.nEmbd] },
  { key: "norm_3.weight", field: "norm3", shape: (c) => [c.nEmbd] },
  { key: "mlp.fc.weight", field: "fc", shape: (c) => [2 * c.intermediateSize, c.nEmbd] },
  { key: "mlp.proj.weight", field: "mlpProj", shape: (c) => [c.nEmbd, c.intermediateSize] },
  { key: "norm_4.weight", field: "norm4", shape: (c) => [c.nEmbd] },
];

/** loom's extension: the Abacus place table (src/model/abacus.ts). */
const ABACUS_KEY = "transformer.abacus.weight";

const blockGroups = [
  ["prelude", "prelude"],
  ["core_block", "core"],
  ["coda", "coda"],
] as const;

/** [checkpoint key, tensor] for every parameter; a tied head appears once, as wte. */
export function namedParameters(p: RavenParams): [string, Tensor][] {
  const out: [string, Tensor][] = [["transformer.wte.weight", p.wte]];
  if (p.abacus) out.push([ABACUS_KEY, p.abacus]);
  for (const [group, field] of blockGroups) {
    p[field].forEach((b, i) => {
      for (const { key, field: f } of blockLayout) {
        const t = b[f];
        if (t) out.push([`transformer.${group}.${i}.${key}`, t]);
      }
    });
    if (group === "prelude" && p.adapter) out.push(["transformer.adapter.weight", p.adapter]);
  }
  out.push(["transformer.ln_f.weight", p.lnF]);
  if (p.lmHead) out.push(["lm_head.weight", p.lmHead]);
  return out;
}

/** [key, shape] of every parameter a config has, in namedParameters order. */
export function expectedShapes(c: ModelConfig): [string, number[]][] {
  const C = c.nEmbd;
  const V = c.paddedVocabSize;
  const out: [string, number[]][] = [["transformer.wte.weight", [V, C]]];
  if (c.abacusPlaces > 0) out.push([ABACUS_KEY, [c.abacusPlaces, C]]);
  const counts = {
    prelude: c.nLayersInPrelude,
    core: c.nLayersInRecurrentBlock,
    coda: c.nLayersInCoda,
  };
  for (const [group, field] of blockGroups) {
    for (let i = 0; i < counts[field]; i++) {
      for (const { key, field: f, shape } of blockLayout) {
        if (f !== "qkBias" || c.qkBias) out.push([`transformer.${group}.${i}.${key}`, shape(c)]);
      }
    }
    if (group === "prelude" && c.injectionType === "linear") {
      out.push(["transformer.adapter.weight", [C, 2 * C]]);
    }
  }
  out.push(["transformer.ln_f.weight", [C]]);
  if (!c.tieEmbeddings) out.push(["lm_head.weight", [V, C]]);
  return out;
}

/** What a checkpoint offers: the shape and a (lazy) float32 read of each stored tensor. */
export interface StoredTensors {
  keys(): Iterable<string>;
  shape(key: string): readonly number[] | undefined;
  float32(key: string): Float32Array;
}

/** Keys a checkpoint may hold that carry no parameter (the RoPE table is recomputed). */
const ignoredKeys = new Set(["freqs_cis"]);

/**
 * Build the parameter tree from stored tensors, checking every expected key and shape. A stored
 * `lm_head.weight` of a tied model is ignored (the hub copy stores the tied matrix twice).
 * `source` names the checkpoint in errors.
 */
export function paramsFromStored(
  c: ModelConfig,
  stored: StoredTensors,
  source: string,
): RavenParams {
  const expected = expectedShapes(c);
  const wanted = new Set(expected.map(([k]) => k));
  for (const key of stored.keys()) {
    const tiedHead = key === "lm_head.weight" && c.tieEmbeddings;
    if (!wanted.has(key) && !ignoredKeys.has(key) && !tiedHead) {
      throw new CheckpointError(
        `${source}: unexpected tensor "${key}" for this config (config/weights mismatch?)`,
      );
    }
  }
  const byKey = new Map<string, Tensor>();
  for (const [key, shape] of expected) {
    const got = stored.shape(key);
    if (got === undefined)
      throw new CheckpointError(`${source}: missing tensor "${key}" [${shape.join(", ")}]`);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `${source}: tensor "${key}" has shape [${got.join(", ")}], the config needs [${shape.join(", ")}]`,
      );
    }
    byKey.set(key, parameter(stored.float32(key), shape));
  }
  return assemble(c, byKey);
}

function assemble(c: ModelConfig, byKey: Map<string, Tensor>): RavenParams {
  const must = (key: string): Tensor => {
    const t = byKey.get(key);
    if (t === undefined) throw new Error(`missing parameter ${key}`);
    return t;
  };
  const block = (prefix: string): BlockParams => {
    const b: Partial<Record<keyof BlockParams, Tensor | null>> = {};
    for (const { key, field } of blockLayout) {
      b[field] = field === "qkBias" && !c.qkBias ? null : must(`${prefix}.${key}`);
    }
    return b as BlockParams;
  };
  const blocks = (n: number, group: string): BlockParams[] =>
    Array.from({ length: n }, (_, i) => block(`transformer.${group}.${i}`));
  return {
    wte: must("transformer.wte.weight"),
    abacus: c.abacusPlaces > 0 ? must(ABACUS_KEY) : null,
    prelude: blocks(c.nLayersInPrelude, "prelude"),
    adapter: c.injectionType === "linear" ? must("transformer.adapter.weight") : null,
    core: blocks(c.nLayersInRecurrentBlock, "core_block"),
    coda: blocks(c.nLayersInCoda, "coda"),
    lnF: must("transformer.ln_f.weight"),
    lmHead: c.tieEmbeddings ? null : must("lm_head.weight"),
  };
}
