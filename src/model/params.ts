/**
 * The parameter tree and its initialisation (Takase et al., "Spike No More", as Huginn does it).
 * Shape letters: C = n_embd, H = heads, D = head dim, N = intermediate size, V = padded vocab.
 */
import type { Rng } from "../tensor/random.ts";
import { type Tensor, parameter } from "../tensor/tensor.ts";
import { type ModelConfig, headDim, initValues } from "./config.ts";

export interface BlockParams {
  norm1: Tensor; // (C) pre-norm of the attention branch
  wqkv: Tensor; // (3C, C) rows = [q | k | v]
  qkBias: Tensor | null; // (2, 1, H, D) added to q and k before RoPE
  proj: Tensor; // (C, C) attention output projection
  norm2: Tensor; // (C) after the attention residual
  norm3: Tensor; // (C) pre-norm of the MLP branch
  fc: Tensor; // (2N, C) rows = [gate | up]
  mlpProj: Tensor; // (C, N)
  norm4: Tensor; // (C) after the MLP residual
}

export interface RavenParams {
  wte: Tensor; // (V, C) token embedding (and the head when tied)
  abacus: Tensor | null; // (P, C) Abacus place embedding (loom's extension), null without
  prelude: BlockParams[];
  adapter: Tensor | null; // (C, 2C) acting on [state | embedding]; null for "add" injection
  core: BlockParams[];
  coda: BlockParams[];
  lnF: Tensor; // (C) final norm, applied before and after the coda
  lmHead: Tensor | null; // (V, C), null when tied to wte
}

/** The output head: wte itself when embeddings are tied. */
export function head(p: RavenParams): Tensor {
  return p.lmHead ?? p.wte;
}

/** A freshly initialised model: truncated normals at ±3σ, norms 1, qk bias and places 0. */
export function initParams(c: ModelConfig, rng: Rng): RavenParams {
  const { std, outProj } = initValues(c);
  const C = c.nEmbd;
  const V = c.paddedVocabSize;
  const normal = (shape: number[], s: number): Tensor =>
    parameter(rng.fillTruncNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), s), shape);
  const block = (): BlockParams => initBlock(c, normal, std, outProj);
  const wte = normal([V, C], std);
  return {
    wte,
    // zeros: a model with Abacus places starts as the same model without them
    abacus: c.abacusPlaces > 0 ? zeros([c.abacusPlaces, C]) : null,
    prelude: Array.from({ length: c.nLayersInPrelude }, block),
    adapter: c.injectionType === "linear" ? normal([C, 2 * C], std) : null,
    core: Array.from({ length: c.nLayersInRecurrentBlock }, block),
    coda: Array.from({ length: c.nLayersInCoda }, block),
    lnF: ones(C),
    lmHead: c.tieEmbeddings ? null : normal([V, C], std),
  };
}

type Normal = (shape: number[], std: number) => Tensor;

function initBlock(c: ModelConfig, normal: Normal, std: number, outProj: number): BlockParams {
  const C = c.nEmbd;
  const N = c.intermediateSize;
  const D = headDim(c);
  // fc: gate rows with std, up rows with the out-projection std (the reference's _init_weights)
  const gate = normal([N, C], std);
  const up = normal([N, C], outProj);
  const fc = new Float32Array(2 * N * C);
  fc.set(gate.data, 0);
  fc.set(up.data, N * C);
  return {
    norm1: ones(C),
    wqkv: normal([3 * C, C], std),
    qkBias: c.qkBias ? parameter(new Float32Array(2 * C), [2, 1, c.nHeads, D]) : null,
    proj: normal([C, C], outProj),
    norm2: ones(C),
    norm3: ones(C),
    fc: parameter(fc, [2 * N, C]),
    mlpProj: normal([C, N], outProj),
    norm4: ones(C),
  };
}

function zeros(shape: number[]): Tensor {
  return parameter(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
}

function ones(n: number): Tensor {
  return parameter(new Float32Array(n).fill(1), [n]);
}
