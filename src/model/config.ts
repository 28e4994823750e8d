/**
 * Model configuration: the reference's RavenConfig, field for field, in camelCase. config.json
 * is read and written in RavenConfig's snake_case form, so a loom model directory loads in the
 * reference's PyTorch code and back. Values the reference derives (head_dim, init_values, …) are
 * computed by the functions below and only written out, never read back as truth.
 */

export type AttentionScale = "constant" | "log-length";
/** What a token's rotary angle counts: its index in the sequence, or its Abacus place. */
export type RotaryPositions = "index" | "place";
export type InjectionType = "linear" | "add"; // concat [s, e] -> Linear(2C -> C), or s + e
export type StateInit = "like-init" | "normal" | "zero"; // how s_0 is drawn (see model/state.ts)
export type SamplingScheme = "poisson-lognormal-filling" | "fixed";

export interface ModelConfig {
  nEmbd: number; // C, the width of every block and of the latent state
  nHeads: number; // H; head dim D = C / H
  nLayersInPrelude: number; // blocks that embed the tokens (run once)
  nLayersInRecurrentBlock: number; // blocks in the core (looped r times)
  nLayersInCoda: number; // blocks that decode the final state (run once)
  vocabSize: number; // tokens of the tokenizer
  paddedVocabSize: number; // rows of the embedding / head (>= vocabSize)
  blockSize: number; // context length: the RoPE table covers positions [0, blockSize)
  intermediateSize: number; // N, hidden width of the gated MLP (fc emits 2N)
  ropeBase: number; // θ base of the rotary embedding
  normEps: number; // RMSNorm epsilon
  qkBias: boolean; // learned bias on q and k (before RoPE)
  tieEmbeddings: boolean; // head weight = embedding weight
  injectionType: InjectionType;
  stateInit: StateInit;
  meanRecurrence: number; // r̄: default test-time steps and the mean of the training sampler
  meanBackpropDepth: number; // k̄: steps with gradient in truncated backprop
  samplingScheme: SamplingScheme;
  /**
   * loom's extension (config.json `attention_window`, written only when > 0): every block
   * attends to the last w positions only, itself included, so information moves a bounded
   * distance per core iteration, like the convolutional cores of Deep Thinking networks. Under
   * `rotary_positions` "place" the window counts places instead: a query sees the earlier keys
   * less than w places from its own, before or after (src/model/rope.ts `windowPlaces`), so
   * that a digit sees the same few places of every number at any length. 0 = plain causal
   * attention, the reference. The reference's code ignores the field, so a windowed model loads
   * there but computes something else.
   */
  attentionWindow: number;
  /**
   * loom's extension (config.json `rotary_pct`, as GPT-NeoX names it, written only when < 1): the
   * fraction of each head's dimensions RoPE turns, the first pairs (the fastest), with the
   * frequencies spread over those; the rest carry no position. 0 = no positions at all (NoPE:
   * only the causal mask and Abacus places order the tokens); 1 = every pair, the reference,
   * which ignores the field.
   */
  rotaryPct: number;
  /**
   * loom's extension (config.json `attention_scale`, written only when not "constant"): how
   * attention scales its logits. "constant": q·k/√D, the reference. "log-length": q·k/√D times
   * ln n, n the keys a query sees (Scalable-Softmax, Nakanishi 2025), so that a key that stands
   * out keeps its weight among more keys than training had (src/model/attention-scale.ts). The
   * reference's code ignores the field.
   */
  attentionScale: AttentionScale;
  /**
   * loom's extension (config.json `rotary_positions`, written only when not "index"): what turns
   * RoPE. "index": each token's index in its sequence, the reference. "place": each token's
   * Abacus place (src/model/abacus.ts; needs `abacus_places` > 0), so that attention between
   * digits depends on how far apart their places are, not their tokens: the coupled positions
   * of Cho et al. 2024 ("Position Coupling"). The reference's code ignores the field.
   */
  rotaryPositions: RotaryPositions;
  /**
   * loom's extension (config.json `abacus_places`, `abacus_digits`, written only when
   * abacus_places > 0): Abacus embeddings, a learned (abacus_places, C) table of each digit's
   * place within its number, added to the digit tokens' embeddings (src/model/abacus.ts);
   * `abacusDigits` are the digit tokens' ids. 0 = none, the reference. A checkpoint with them
   * has one more tensor, `transformer.abacus.weight`, which the reference's code does not know.
   */
  abacusPlaces: number;
  abacusDigits: readonly number[];
  /** RavenConfig fields loom keeps but does not interpret (e.g. torch_dtype, bos_token_id). */
  extra: Readonly<Record<string, unknown>>;
}

function windowUnit(c: ModelConfig): string {
  switch (c.rotaryPositions) {
    case "index":
      return "";
    case "place":
      return " places";
  }
}

/** loom's extensions a config uses, in words (", attention window 2, no rotary positions"). */
export function describeExtensions(c: ModelConfig): string {
  const rotary =
    c.rotaryPct === 0
      ? "no rotary positions"
      : `rotary positions on ${100 * c.rotaryPct}% of a head`;
  return [
    ...(c.attentionWindow > 0 ? [`attention window ${c.attentionWindow}${windowUnit(c)}`] : []),
    ...(c.abacusPlaces > 0 ? [`Abacus places ${c.abacusPlaces}`] : []),
    ...(c.rotaryPct < 1 ? [rotary] : []),
    ...(c.rotaryPositions === "place" ? ["rotary positions from Abacus places"] : []),
    ...(c.attentionScale === "log-length" ? ["attention logits × ln(keys)"] : []),
  ]
    .map((part) => `, ${part}`)
    .join("");
}

/** Derived values, as RavenConfig computes them. */
export const headDim = (c: ModelConfig): number => c.nEmbd / c.nHeads;
export const nLayers = (c: ModelConfig): number =>
  c.nLayersInPrelude + c.nLayersInRecurrentBlock + c.nLayersInCoda;
export const effectiveExpectedDepth = (c: ModelConfig): number =>
  c.nLayersInPrelude + c.nLayersInCoda + c.nLayersInRecurrentBlock * c.meanRecurrence;

/** Takase init: std = sqrt(2 / 5C); output projections std / sqrt(2 · depth); embed × sqrt(C). */
export function initValues(c: ModelConfig): {
  std: number;
  outProj: number;
  embedding: number;
  embedScale: number;
} {
  const std = Math.sqrt(2 / (5 * c.nEmbd));
  return {
    std,
    outProj: std / Math.sqrt(2 * effectiveExpectedDepth(c)),
    embedding: std,
    embedScale: Math.sqrt(c.nEmbd),
  };
}

/** The released Huginn-0125 (3.5 B parameters), RavenConfig's defaults. */
export const huginn0125: ModelConfig = {
  nEmbd: 5280,
  nHeads: 55,
  nLayersInPrelude: 2,
  nLayersInRecurrentBlock: 4,
  nLayersInCoda: 2,
  vocabSize: 65536,
  paddedVocabSize: 65536,
  blockSize: 4096,
  intermediateSize: 17920,
  ropeBase: 50000,
  normEps: 1e-6,
  qkBias: true,
  tieEmbeddings: true,
  injectionType: "linear",
  stateInit: "like-init",
  meanRecurrence: 32,
  meanBackpropDepth: 8,
  samplingScheme: "poisson-lognormal-filling",
  attentionWindow: 0,
  rotaryPct: 1,
  attentionScale: "constant",
  rotaryPositions: "index",
  abacusPlaces: 0,
  abacusDigits: [],
  extra: {},
};

/** Small shapes for CPU work. `tiny` is the parity fixtures' config. */
export const presets = {
  "huginn-0125": huginn0125,
  tiny: {
    ...huginn0125,
    nEmbd: 64,
    nHeads: 4,
    nLayersInPrelude: 1,
    nLayersInRecurrentBlock: 2,
    nLayersInCoda: 1,
    vocabSize: 96,
    paddedVocabSize: 96,
    blockSize: 64,
    intermediateSize: 128,
    meanRecurrence: 4,
    meanBackpropDepth: 2,
  },
  small: {
    ...huginn0125,
    nEmbd: 128,
    nHeads: 4,
    nLayersInPrelude: 1,
    nLayersInRecurrentBlock: 2,
    nLayersInCoda: 1,
    vocabSize: 64,
    paddedVocabSize: 64,
    blockSize: 128,
    intermediateSize: 352,
    meanRecurrence: 8,
    meanBackpropDepth: 4,
  },
  bench: {
    ...huginn0125,
    nEmbd: 256,
    nHeads: 4,
    nLayersInPrelude: 1,
    nLayersInRecurrentBlock: 2,
    nLayersInCoda: 1,
    vocabSize: 256,
    paddedVocabSize: 256,
    blockSize: 256,
    intermediateSize: 704,
    meanRecurrence: 8,
    meanBackpropDepth: 4,
  },
} satisfies Record<string, ModelConfig>;

export type PresetName = keyof typeof presets;
