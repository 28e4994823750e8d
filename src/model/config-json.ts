/**
 * config.json <-> ModelConfig. The JSON is RavenConfig's `to_dict()`: snake_case fields, fields
 * left out take the reference's defaults, derived fields are recomputed (and must agree when
 * present). Unknown fields are kept in `extra` and written back, so nothing is lost.
 */
import {
  type InjectionType,
  type AttentionScale,
  type ModelConfig,
  type RotaryPositions,
  type SamplingScheme,
  type StateInit,
  effectiveExpectedDepth,
  headDim,
  huginn0125,
  initValues,
  nLayers,
} from "./config.ts";

type NumberKey = {
  [K in keyof ModelConfig]: ModelConfig[K] extends number ? K : never;
}[keyof ModelConfig];

/** snake_case field -> numeric ModelConfig key, and whether it must be a positive integer. */
const numberFields: [string, NumberKey, "int" | "float"][] = [
  ["n_embd", "nEmbd", "int"],
  ["n_heads", "nHeads", "int"],
  ["n_layers_in_prelude", "nLayersInPrelude", "int"],
  ["n_layers_in_recurrent_block", "nLayersInRecurrentBlock", "int"],
  ["n_layers_in_coda", "nLayersInCoda", "int"],
  ["vocab_size", "vocabSize", "int"],
  ["padded_vocab_size", "paddedVocabSize", "int"],
  ["block_size", "blockSize", "int"],
  ["intermediate_size", "intermediateSize", "int"],
  ["rope_base", "ropeBase", "float"],
  ["norm_eps", "normEps", "float"],
  ["mean_recurrence", "meanRecurrence", "int"],
  ["mean_backprop_depth", "meanBackpropDepth", "int"],
  ["attention_window", "attentionWindow", "int"],
  ["rotary_pct", "rotaryPct", "float"],
  ["abacus_places", "abacusPlaces", "int"],
];

/** The closed string fields and their allowed values. */
const injectionTypes: readonly InjectionType[] = ["linear", "add"];
const attentionScales: readonly AttentionScale[] = ["constant", "log-length"];
const rotaryPositionsChoices: readonly RotaryPositions[] = ["index", "place"];
const stateInits: readonly StateInit[] = ["like-init", "normal", "zero"];
const samplingSchemes: readonly SamplingScheme[] = ["poisson-lognormal-filling", "fixed"];

/** Architecture choices RavenConfig can name but loom implements only one of. */
const fixedFields: Record<string, unknown> = {
  bias: false,
  block_class_name: "SandwichBlock",
  norm_class_name: "RMSNorm_llama",
  mlp_class_name: "GatedMLP",
  nonlin_name: "SiLU",
};

/** Fields computed from the others (checked when present, never stored in ModelConfig). */
const derivedFields = new Set([
  "n_layers",
  "head_dim",
  "num_key_value_heads",
  "num_attention_heads",
  "effective_expected_depth",
  "init_values",
  "hidden_size",
  "num_hidden_layers",
]);

/** Fields the reference writes that loom passes through unchanged (defaults as RavenConfig). */
const passThroughDefaults: Record<string, unknown> = {
  padding_multiple: 4096,
  architecture_class_name: "RecurrentGPT",
  init_strategy: "takase",
  init_orthogonal: false,
  activation_checkpoint_impl: "per-iteration",
  torch_dtype: "float32",
  transformers_version: "4.47.1",
  test_time_noise: 0,
  test_time_noise_type: "fixed",
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parse a RavenConfig dict (config.json). `source` names the file in error messages. */
export function configFromJson(json: unknown, source = "config.json"): ModelConfig {
  const fail = (field: string, why: string): never => {
    throw new ConfigError(`${source}: field "${field}" ${why}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object`);
  }
  const obj = { ...(json as Record<string, unknown>) };
  // hub-style aliases
  if (obj.n_embd === undefined && obj.hidden_size !== undefined) obj.n_embd = obj.hidden_size;
  if (obj.n_heads === undefined && obj.num_attention_heads !== undefined) {
    obj.n_heads = obj.num_attention_heads;
  }
  const cfg: ModelConfig = { ...huginn0125, extra: {} };
  if (obj.padded_vocab_size === undefined && obj.vocab_size !== undefined) {
    obj.padded_vocab_size = obj.vocab_size; // RavenConfig: padded_vocab_size = vocab_size
  }
  for (const [field, key, kind] of numberFields) {
    const v = obj[field];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v))
      fail(field, `must be a number, got ${JSON.stringify(v)}`);
    const n = v as number;
    if (kind === "int" && !(Number.isInteger(n) && n >= 0))
      fail(field, `must be a non-negative integer, got ${n}`);
    cfg[key] = n;
  }
  cfg.qkBias = readBool(obj, "qk_bias", cfg.qkBias, fail);
  cfg.tieEmbeddings = readBool(obj, "tie_embeddings", cfg.tieEmbeddings, fail);
  cfg.injectionType = readChoice(obj, "injection_type", injectionTypes, cfg.injectionType, fail);
  cfg.stateInit = readChoice(obj, "state_init", stateInits, cfg.stateInit, fail);
  cfg.attentionScale = readChoice(
    obj,
    "attention_scale",
    attentionScales,
    cfg.attentionScale,
    fail,
  );
  cfg.rotaryPositions = readChoice(
    obj,
    "rotary_positions",
    rotaryPositionsChoices,
    cfg.rotaryPositions,
    fail,
  );
  cfg.samplingScheme = readChoice(
    obj,
    "sampling_scheme",
    samplingSchemes,
    cfg.samplingScheme,
    fail,
  );
  for (const [field, expected] of Object.entries(fixedFields)) {
    if (obj[field] !== undefined && obj[field] !== expected) {
      fail(
        field,
        `is ${JSON.stringify(obj[field])}; loom implements only ${JSON.stringify(expected)}`,
      );
    }
  }
  cfg.abacusDigits = readIds(obj, "abacus_digits", fail);
  cfg.extra = collectExtra(obj);
  validateConfig(cfg, source);
  checkDerived(obj, cfg, fail);
  return cfg;
}

type Fail = (field: string, why: string) => never;

function readBool(obj: Record<string, unknown>, field: string, dflt: boolean, fail: Fail): boolean {
  const v = obj[field];
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") fail(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function readIds(obj: Record<string, unknown>, field: string, fail: Fail): number[] {
  const v = obj[field];
  if (v === undefined) return [];
  const ok = (x: unknown): boolean => typeof x === "number" && Number.isInteger(x) && x >= 0;
  if (!Array.isArray(v) || !v.every(ok)) {
    fail(field, `must be a list of token ids, got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

function readChoice<T extends string>(
  obj: Record<string, unknown>,
  field: string,
  allowed: readonly T[],
  dflt: T,
  fail: Fail,
): T {
  const v = obj[field];
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) {
    fail(
      field,
      `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${JSON.stringify(v)}`,
    );
  }
  return v as T;
}

function collectExtra(obj: Record<string, unknown>): Record<string, unknown> {
  const known = new Set([
    ...numberFields.map(([f]) => f),
    "qk_bias",
    "tie_embeddings",
    "injection_type",
    "state_init",
    "sampling_scheme",
    "attention_scale",
    "rotary_positions",
    "abacus_digits",
    ...Object.keys(fixedFields),
    ...derivedFields,
  ]);
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !known.has(k)));
}

function checkDerived(obj: Record<string, unknown>, cfg: ModelConfig, fail: Fail): void {
  const expect: Record<string, number> = {
    head_dim: headDim(cfg),
    num_key_value_heads: cfg.nHeads,
    num_attention_heads: cfg.nHeads,
  };
  for (const [field, value] of Object.entries(expect)) {
    if (obj[field] !== undefined && obj[field] !== value) {
      fail(field, `is ${JSON.stringify(obj[field])} but the other fields give ${value}`);
    }
  }
}

/** Throws a ConfigError naming the first field whose value cannot make a model. */
export function validateConfig(c: ModelConfig, source = "config"): void {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`${source}: field "${field}" ${why}`);
  };
  if (c.nEmbd < 1) bad("n_embd", "must be positive");
  if (c.nHeads < 1) bad("n_heads", "must be positive");
  if (c.nEmbd % c.nHeads !== 0) bad("n_heads", `(${c.nHeads}) must divide n_embd (${c.nEmbd})`);
  if (headDim(c) % 2 !== 0) bad("n_heads", `gives an odd head dim ${headDim(c)}; RoPE needs pairs`);
  if (c.nLayersInRecurrentBlock < 1) bad("n_layers_in_recurrent_block", "must be at least 1");
  if (c.vocabSize < 1) bad("vocab_size", "must be positive");
  if (c.paddedVocabSize < c.vocabSize)
    bad("padded_vocab_size", `must be >= vocab_size (${c.vocabSize})`);
  if (c.blockSize < 1) bad("block_size", "must be positive");
  if (c.intermediateSize < 1) bad("intermediate_size", "must be positive");
  if (!(c.ropeBase > 0)) bad("rope_base", "must be positive");
  if (!(c.normEps > 0)) bad("norm_eps", "must be positive");
  if (!(c.rotaryPct >= 0 && c.rotaryPct <= 1)) bad("rotary_pct", "must be between 0 and 1");
  if (c.abacusPlaces > 0 && c.abacusDigits.length === 0) {
    bad("abacus_digits", "must list the digit tokens' ids when abacus_places > 0");
  }
  if (c.rotaryPositions === "place") {
    if (c.abacusPlaces === 0) bad("rotary_positions", '"place" needs abacus_places > 0');
    if (c.rotaryPct === 0) bad("rotary_positions", '"place" needs rotary_pct > 0');
    if (c.abacusPlaces > c.blockSize)
      bad(
        "abacus_places",
        `(${c.abacusPlaces}) must be <= block_size (${c.blockSize}) under rotary_positions "place"`,
      );
  }
  const outside = c.abacusDigits.find((id) => id >= c.vocabSize);
  if (outside !== undefined)
    bad("abacus_digits", `has id ${outside} >= vocab_size (${c.vocabSize})`);
  if (c.meanBackpropDepth > c.meanRecurrence) {
    bad(
      "mean_backprop_depth",
      `(${c.meanBackpropDepth}) must not exceed mean_recurrence (${c.meanRecurrence})`,
    );
  }
}

/** The RavenConfig dict, in the order the reference writes it, derived values included. */
export function configToJson(c: ModelConfig): Record<string, unknown> {
  const iv = initValues(c);
  return {
    n_embd: c.nEmbd,
    n_heads: c.nHeads,
    n_layers: nLayers(c),
    block_size: c.blockSize,
    vocab_size: c.vocabSize,
    padded_vocab_size: c.paddedVocabSize,
    padding_multiple: pass(c, "padding_multiple"),
    tie_embeddings: c.tieEmbeddings,
    intermediate_size: c.intermediateSize,
    bias: false,
    architecture_class_name: pass(c, "architecture_class_name"),
    block_class_name: fixedFields.block_class_name,
    norm_class_name: fixedFields.norm_class_name,
    norm_eps: c.normEps,
    mlp_class_name: fixedFields.mlp_class_name,
    nonlin_name: fixedFields.nonlin_name,
    init_strategy: pass(c, "init_strategy"),
    init_orthogonal: pass(c, "init_orthogonal"),
    state_init: c.stateInit,
    injection_type: c.injectionType,
    n_layers_in_recurrent_block: c.nLayersInRecurrentBlock,
    mean_recurrence: c.meanRecurrence,
    sampling_scheme: c.samplingScheme,
    mean_backprop_depth: c.meanBackpropDepth,
    n_layers_in_prelude: c.nLayersInPrelude,
    n_layers_in_coda: c.nLayersInCoda,
    qk_bias: c.qkBias,
    activation_checkpoint_impl: pass(c, "activation_checkpoint_impl"),
    rope_base: c.ropeBase,
    torch_dtype: pass(c, "torch_dtype"),
    transformers_version: pass(c, "transformers_version"),
    test_time_noise: pass(c, "test_time_noise"),
    test_time_noise_type: pass(c, "test_time_noise_type"),
    num_key_value_heads: c.nHeads,
    head_dim: headDim(c),
    effective_expected_depth: effectiveExpectedDepth(c),
    init_values: {
      std: iv.std,
      out_proj: iv.outProj,
      embedding: iv.embedding,
      embed_scale: iv.embedScale,
    },
    architectures: ["RavenForCausalLM"],
    model_type: "huginn_raven",
    ...(c.attentionWindow > 0 ? { attention_window: c.attentionWindow } : {}),
    ...(c.rotaryPct < 1 ? { rotary_pct: c.rotaryPct } : {}),
    ...(c.attentionScale !== "constant" ? { attention_scale: c.attentionScale } : {}),
    ...(c.rotaryPositions !== "index" ? { rotary_positions: c.rotaryPositions } : {}),
    ...(c.abacusPlaces > 0
      ? { abacus_places: c.abacusPlaces, abacus_digits: [...c.abacusDigits] }
      : {}),
    ...c.extra,
    num_attention_heads: c.nHeads,
  };
}

function pass(c: ModelConfig, field: string): unknown {
  return c.extra[field] ?? passThroughDefaults[field];
}
