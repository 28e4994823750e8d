/**
 * The recurrent-depth model (Geiping et al. 2025, arXiv 2502.05171). Read this file first.
 *
 *   e      = prelude(wte[x] · sqrt(C))                  embed the tokens once
 *   s_0    ~ initial state                              random (or zero, or given)
 *   s_i    = core(adapter([s_{i-1} | e]))  i = 1..r     think: the same blocks, r times
 *   logits = head(ln_f(coda(ln_f(s_r))))               decode; ln_f is used twice
 *
 * The hooks mirror the reference: embedInputs, initializeState, iterateOneStep,
 * predictFromLatents; forward strings them together. Shapes: B batch, T positions, C width,
 * V vocab.
 */
import { add, concatLast, crossEntropy, embedding, linear, rmsNorm } from "../tensor/ops.ts";
import type { Rng } from "../tensor/random.ts";
import { type Tensor, noGrad, tensor } from "../tensor/tensor.ts";
import { sequencePlaces } from "./abacus.ts";
import { type ModelConfig, headDim, initValues } from "./config.ts";
import { type BlockEnv, type ForwardContext, sandwichBlock } from "./layers.ts";
import { fastBlockFor } from "./fast-block.ts";
import { type RavenParams, head, initParams } from "./params.ts";
import { type RopeTable, ropeTable } from "./rope.ts";

export interface RavenModel extends BlockEnv {
  config: ModelConfig;
  params: RavenParams;
  rope: RopeTable;
}

export function createModel(config: ModelConfig, params: RavenParams): RavenModel {
  const rope = ropeTable(headDim(config), config.blockSize, config.ropeBase, config.rotaryPct);
  return { config, params, rope };
}

/** A new model with freshly initialised weights. */
export function initModel(config: ModelConfig, rng: Rng): RavenModel {
  return createModel(config, initParams(config, rng));
}

/** r steps without gradient, or truncated backprop: `noGrad` steps off the tape, then `withGrad`. */
export type NumSteps = number | { noGrad: number; withGrad: number };

/** How s_0 is chosen: a config mode (drawn with rng), or a given (B, T, C) tensor. */
export type StateInitOption = RandomStateInit | { mode: "zero" } | { mode: "given"; state: Tensor };

export interface RandomStateInit {
  mode: "like-init" | "normal";
  rng: Rng;
  scale?: number;
}

/**
 * The prelude: scaled embedding (plus the Abacus places' when the model has them), then the
 * prelude blocks (KV slots 0 … nPrelude-1).
 */
export function embedInputs(m: RavenModel, ids: Int32Array, ctx: ForwardContext): Tensor {
  const { embedScale } = initValues(m.config);
  const shape = [ctx.batch, ctx.seqLen];
  let x = embedding(m.params.wte, ids, shape, embedScale); // (B, T, C)
  if (m.params.abacus) {
    x = add(x, embedding(m.params.abacus, placesOf(ctx), shape, embedScale));
  }
  m.params.prelude.forEach((block, j) => {
    x = sandwichBlock(block, x, j, `transformer.prelude.${j}`, m, ctx);
  });
  return x;
}

/** The chunk's Abacus places, which the context must carry (they may turn RoPE too). */
function placesOf(ctx: ForwardContext): Int32Array {
  if (!ctx.places)
    throw new Error("embedInputs: the model has Abacus places; set ctx.places (sequencePlaces)");
  return ctx.places;
}

/**
 * s_0 of shape like e. "like-init": N(0, σ²) truncated at ±3σ with σ the init std (times
 * `scale`), then × sqrt(C), as the reference's initialize_state; "normal": the same without
 * truncation; "zero": zeros.
 */
export function initializeState(m: RavenModel, e: Tensor, init: StateInitOption): Tensor {
  switch (init.mode) {
    case "zero":
      return tensor(new Float32Array(e.size), e.shape);
    case "given":
      if (init.state.size !== e.size) {
        throw new Error(
          `initial state has ${init.state.size} values, expected [${e.shape.join(", ")}]`,
        );
      }
      return tensor(init.state.data.slice(), e.shape);
    case "like-init":
    case "normal": {
      const data = new Float32Array(e.size);
      fillRandomState(m.config, init, data);
      return tensor(data, e.shape);
    }
    default:
      return init satisfies never;
  }
}

/** A random initial state, as `initializeState` draws it, into `out` (any whole number of rows). */
export function fillRandomState(c: ModelConfig, init: RandomStateInit, out: Float32Array): void {
  const { std, embedScale } = initValues(c);
  const s = std * (init.scale ?? 1);
  if (s > 0 && init.mode === "like-init") init.rng.fillTruncNormal(out, s, 3, embedScale);
  if (s > 0 && init.mode === "normal") init.rng.fillNormal(out, 0, s * embedScale);
}

/** One recurrence: inject e through the adapter, then the core blocks. `step` is 0-based. */
export function iterateOneStep(
  m: RavenModel,
  s: Tensor,
  e: Tensor,
  step: number,
  ctx: ForwardContext,
): Tensor {
  const { nLayersInPrelude: nP, nLayersInRecurrentBlock: nC } = m.config;
  let x = m.params.adapter
    ? linear(concatLast(s, e), m.params.adapter) // (B, T, 2C) -> (B, T, C); state first
    : add(s, e);
  ctx.trace?.("transformer.adapter", x);
  m.params.core.forEach((block, j) => {
    x = sandwichBlock(block, x, nP + nC * step + j, `transformer.core_block.${j}`, m, ctx);
  });
  return x;
}

/** ln_f -> coda -> ln_f -> head. Takes the RAW state (not ln_f(s)); logits (B, T, V). */
export function predictFromLatents(
  m: RavenModel,
  s: Tensor,
  ctx: ForwardContext,
): { logits: Tensor; hidden: Tensor } {
  const eps = m.config.normEps;
  let z = rmsNorm(s, m.params.lnF, eps);
  ctx.trace?.("transformer.ln_f", z);
  m.params.coda.forEach((block, c) => {
    z = sandwichBlock(block, z, -(c + 1), `transformer.coda.${c}`, m, ctx);
  });
  z = rmsNorm(z, m.params.lnF, eps); // the same ln_f again
  ctx.trace?.("transformer.ln_f", z);
  return { logits: linear(z, head(m.params)), hidden: z };
}

export interface ForwardOptions {
  batch: number; // B; ids holds B·T token ids
  numSteps?: NumSteps; // default: the config's mean_recurrence, no gradient
  init?: StateInitOption; // default: zero
  labels?: Int32Array; // (B·T) pre-shifted targets, -100 = ignore; gives `loss`
  positions?: Int32Array; // (T) default 0 … T-1
  places?: Int32Array | undefined; // (B·T) Abacus places; default: from ids, rows start at 0
  cache?: ForwardContext["cache"];
  trace?: ForwardContext["trace"];
  keyMask?: Uint8Array; // (B, T) 0 = padding
  /** Run steps without gradient on the Tensor-free block (same numbers; default true). */
  fastBlocks?: boolean;
}

export interface ForwardOutput {
  logits: Tensor; // (B, T, V)
  latentStates: Tensor; // (B, T, C) ln_f(s_r), the reference's `latent_states`
  state: Tensor; // (B, T, C) the raw final state s_r
  loss: Tensor | null; // mean cross-entropy over labelled positions
}

/** The whole model: prelude, r recurrences (truncated backprop when asked), coda, head. */
export function forward(m: RavenModel, ids: Int32Array, o: ForwardOptions): ForwardOutput {
  const ctx = forwardContext(m, ids, o);
  const e = embedInputs(m, ids, ctx);
  let s = initializeState(m, e, o.init ?? { mode: "zero" });
  const steps = o.numSteps ?? m.config.meanRecurrence;
  const [nNoGrad, nWithGrad] =
    typeof steps === "number" ? [steps, 0] : [steps.noGrad, steps.withGrad];
  // truncated backprop: the first steps are constants to the tape, the last ones carry gradient
  noGrad(() => {
    for (let t = 0; t < nNoGrad; t++) s = iterateOneStep(m, s, e, t, ctx);
  });
  for (let t = nNoGrad; t < nNoGrad + nWithGrad; t++) s = iterateOneStep(m, s, e, t, ctx);
  const { logits } = predictFromLatents(m, s, ctx);
  const latentStates = noGrad(() => rmsNorm(s, m.params.lnF, m.config.normEps));
  const loss = o.labels ? crossEntropy(logits, o.labels) : null;
  return { logits, latentStates, state: s, loss };
}

function forwardContext(m: RavenModel, ids: Int32Array, o: ForwardOptions): ForwardContext {
  const B = o.batch;
  if (!(B > 0) || ids.length % B !== 0) {
    throw new Error(`forward: ${ids.length} token ids do not split into ${B} rows`);
  }
  const T = ids.length / B;
  const positions = o.positions ?? Int32Array.from({ length: T }, (_, i) => i);
  if (positions.length !== T)
    throw new Error(`forward: ${positions.length} positions for ${T} tokens`);
  for (const p of positions) {
    if (p < 0 || p >= m.rope.maxPos) {
      throw new Error(
        `forward: position ${p} is outside the context [0, ${m.rope.maxPos}) (block_size)`,
      );
    }
  }
  const fastBlock = o.fastBlocks === false ? undefined : fastBlockFor(m);
  return {
    batch: B,
    seqLen: T,
    positions,
    places: o.places ?? (positions[0] === 0 ? sequencePlaces(m.config, ids, B, T) : undefined),
    cache: o.cache,
    trace: o.trace,
    keyMask: o.keyMask,
    fastBlock,
  };
}
