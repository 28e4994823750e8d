/**
 * Optimizers over explicit state, optax-style: `init` builds the (serialisable) state, `step`
 * updates the parameters in place from their gradients. Nothing hides inside the optimizer object,
 * so a checkpoint is the parameters plus `OptimizerState` (see `optimizerStateToTensors`).
 *
 * - `adamw`: torch.optim.AdamW, run by the active backend's `adamw` kernel.
 * - `adam-atan2`: the reference's ELLISAdam as Huginn-0125 was trained with it (§3.5): running
 *   init, update clipping, the atan2 update in place of ε, decoupled weight decay.
 *
 * Weight decay is skipped for norm weights and biases (see `decays`), like the reference's
 * `no_weight_decay_for_bias_and_norm_params`.
 */
import { backend } from "../backend/select.ts";

/** What an optimizer needs of a parameter; loom's Tensor satisfies it structurally. */
export interface Param {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array | null;
  /** Used to label serialised state; `[data.length]` when absent. */
  readonly shape?: readonly number[];
}

export type OptimizerName = "adamw" | "adam-atan2";

export interface OptimizerHyper {
  beta1: number; // 0.9 for Huginn
  beta2: number; // 0.95 for Huginn
  eps: number; // adamw: added to sqrt(v̂) (torch 1e-8); adam-atan2: update-clipping floor (1e-6)
  weightDecay: number; // adamw: p -= lr·wd·p; adam-atan2: p *= 1 − (lr/lrPeak)·wd
  lrPeak: number; // adam-atan2 only: the peak (initial) learning rate of the schedule
}

/**
 * Optimizer state: `step` = optimizer steps taken so far; `m`, `v` = first and second moments,
 * index-aligned with the parameter list given to `init`.
 */
export interface OptimizerState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export interface Optimizer {
  readonly name: OptimizerName;
  /** Zero moments for `params`, step 0. */
  init(params: readonly Param[]): OptimizerState;
  /**
   * One update in place at learning rate `lr`: state.step += 1, then each parameter with a
   * gradient is updated (parameters whose `grad` is null are left alone; the step count is shared).
   */
  step(params: readonly Param[], state: OptimizerState, lr: number): void;
}

/** One tensor of serialised optimizer state. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** `OptimizerState` as named tensors `m.<param name>`, `v.<param name>` plus the step count. */
export interface SerializedOptimizerState {
  step: number;
  tensors: NamedTensor[];
}

/** Names that get no weight decay: norm weights, `qk_bias`, and biases. */
const NO_DECAY = /(?:norm_[1-4]\.weight|ln_f\.weight|qk_bias|\.bias)$/;

/**
 * Whether weight decay applies to the parameter called `name`: true unless the name ends with
 * `norm_1.weight` … `norm_4.weight`, `ln_f.weight`, `qk_bias` or `.bias`.
 */
export function decays(name: string): boolean {
  return !NO_DECAY.test(name);
}

/** The optimizer `name` with hyper-parameters `hyper` (see `OptimizerHyper`). */
export function makeOptimizer(name: OptimizerName, hyper: OptimizerHyper): Optimizer {
  validateHyper(name, hyper);
  const update = tensorUpdate(name);
  return {
    name,
    init: (params) => ({
      step: 0,
      m: params.map((p) => new Float32Array(p.data.length)),
      v: params.map((p) => new Float32Array(p.data.length)),
    }),
    step(params, state, lr) {
      checkAligned(params, state);
      state.step += 1;
      params.forEach((p, i) => {
        if (p.grad === null) return;
        if (p.grad.length !== p.data.length) {
          throw new Error(
            `optimizer: gradient of ${p.name} has ${p.grad.length} elements, not ${p.data.length}`,
          );
        }
        const weightDecay = decays(p.name) ? hyper.weightDecay : 0;
        update(p.data, p.grad, state.m[i], state.v[i], { ...hyper, weightDecay }, lr, state.step);
      });
    },
  };
}

type TensorUpdate = (
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  h: OptimizerHyper,
  lr: number,
  step: number,
) => void;

function tensorUpdate(name: OptimizerName): TensorUpdate {
  switch (name) {
    case "adamw":
      return adamwUpdate;
    case "adam-atan2":
      return adamAtan2Update;
    default:
      throw new Error(`makeOptimizer: unknown optimizer ${String(name satisfies never)}`);
  }
}

/**
 * torch.optim.AdamW on one tensor, t = step:
 *   p ← p − lr·wd·p;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
 *   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
 */
const adamwUpdate: TensorUpdate = (p, g, m, v, h, lr, step) => {
  const { beta1, beta2, eps, weightDecay } = h;
  backend().adamw(p, g, m, v, { lr, beta1, beta2, eps, weightDecay, step });
};

/**
 * ELLISAdam (`atan_adam`, `update_clipping`, `running_init`, `decouple_wd`) on one tensor, t = step:
 *   t = 1: m ← g, v ← g²                                   (running init, before the update)
 *   m ← m + (1−β1)(g − m);  v ← β2 v + (1−β2) g²;  v ← max(v, eps²)   (the clamp is stored)
 *   rms = sqrt(mean(g² / v));  s = lr / max(rms, 1) / (1 − β1ᵗ)        (update clipping)
 *   p ← p · (1 − (lr/lrPeak)·wd)                           (decoupled: not scaled by lr's size)
 *   p ← p − s · atan2(m, sqrt(v) / sqrt(1 − β2ᵗ))
 */
const adamAtan2Update: TensorUpdate = (p, g, m, v, h, lr, step) => {
  const { beta1, beta2, eps, weightDecay, lrPeak } = h;
  if (step === 1) runningInit(g, m, v);
  const rms = updateMoments(g, m, v, beta1, beta2, eps * eps);
  const stepSize = lr / Math.max(rms, 1) / (1 - beta1 ** step);
  const keep = 1 - (lr / lrPeak) * weightDecay;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i] * keep - stepSize * Math.atan2(m[i], Math.sqrt(v[i]) / bc2Sqrt);
  }
};

/** m ← g, v ← g² (the reference's running_init state). */
function runningInit(g: Float32Array, m: Float32Array, v: Float32Array): void {
  for (let i = 0; i < g.length; i++) {
    m[i] = g[i];
    v[i] = g[i] * g[i];
  }
}

/** Moment updates, v clamped to ≥ vFloor in place; returns rms = sqrt(mean(g² / v)). */
function updateMoments(
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  vFloor: number,
): number {
  let sum = 0;
  for (let i = 0; i < g.length; i++) {
    const gi = g[i];
    m[i] += (1 - beta1) * (gi - m[i]);
    v[i] = Math.max(beta2 * v[i] + (1 - beta2) * gi * gi, vFloor);
    sum += (gi * gi) / v[i];
  }
  return Math.sqrt(sum / g.length);
}

/**
 * Scale all gradients in place so their global L2 norm is at most `maxNorm`, like
 * torch.nn.utils.clip_grad_norm_:
 *   norm = sqrt(Σ_params Σ_i g_i²);  c = maxNorm / (norm + 1e-6);  g ← g · c  when c < 1.
 * Returns the norm before clipping (NaN/Infinity when a gradient is not finite; the caller should
 * then skip the step). Parameters whose `grad` is null are ignored.
 */
export function clipGradNorm(params: readonly Param[], maxNorm: number): number {
  let sumSq = 0;
  for (const { grad } of params) {
    if (grad === null) continue;
    for (const x of grad) sumSq += x * x;
  }
  const norm = Math.sqrt(sumSq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const { grad } of params) {
      if (grad === null) continue;
      for (let i = 0; i < grad.length; i++) grad[i] *= coef;
    }
  }
  return norm;
}

/**
 * The state as named tensors `m.<param name>` and `v.<param name>` (shaped like the parameter) plus
 * `step`. The tensors alias the state's arrays; nothing is copied.
 */
export function optimizerStateToTensors(
  state: OptimizerState,
  params: readonly Param[],
): SerializedOptimizerState {
  checkAligned(params, state);
  const tensors = params.flatMap((p, i) => [
    { name: `m.${p.name}`, shape: shapeOf(p), data: state.m[i] },
    { name: `v.${p.name}`, shape: shapeOf(p), data: state.v[i] },
  ]);
  return { step: state.step, tensors };
}

/**
 * Inverse of `optimizerStateToTensors` for `params` (in the order the optimizer will see them).
 * Throws on a missing, misshaped or unexpected tensor, or a bad step. The state aliases the
 * saved tensors' arrays.
 */
export function optimizerStateFromTensors(
  saved: SerializedOptimizerState,
  params: readonly Param[],
): OptimizerState {
  if (!Number.isInteger(saved.step) || saved.step < 0) {
    throw new Error(`optimizer state: step must be an integer >= 0, got ${saved.step}`);
  }
  const byName = new Map(saved.tensors.map((t) => [t.name, t]));
  if (byName.size !== saved.tensors.length)
    throw new Error("optimizer state: duplicate tensor names");
  const take = (kind: "m" | "v", p: Param): Float32Array => {
    const t = byName.get(`${kind}.${p.name}`);
    if (t === undefined) throw new Error(`optimizer state: missing tensor "${kind}.${p.name}"`);
    checkShape(t, p);
    byName.delete(t.name);
    return t.data;
  };
  const state = {
    step: saved.step,
    m: params.map((p) => take("m", p)),
    v: params.map((p) => take("v", p)),
  };
  if (byName.size > 0) {
    throw new Error(`optimizer state: unexpected tensors ${[...byName.keys()].join(", ")}`);
  }
  return state;
}

function shapeOf(p: Param): number[] {
  return p.shape === undefined ? [p.data.length] : [...p.shape];
}

function checkShape(t: NamedTensor, p: Param): void {
  const want = shapeOf(p);
  const sameShape = t.shape.length === want.length && t.shape.every((d, i) => d === want[i]);
  if (!sameShape || t.data.length !== p.data.length) {
    throw new Error(
      `optimizer state: "${t.name}" has shape [${t.shape.join(", ")}] and ${t.data.length} ` +
        `elements, parameter ${p.name} has shape [${want.join(", ")}] and ${p.data.length}`,
    );
  }
}

function checkAligned(params: readonly Param[], state: OptimizerState): void {
  const ok =
    state.m.length === params.length &&
    state.v.length === params.length &&
    params.every(
      (p, i) => state.m[i].length === p.data.length && state.v[i].length === p.data.length,
    );
  if (!ok)
    throw new Error(
      "optimizer: state does not match the parameter list (call init with the same params)",
    );
}

function validateHyper(name: OptimizerName, h: OptimizerHyper): void {
  const betasOk = h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1;
  if (!betasOk || !(h.eps >= 0) || !(h.weightDecay >= 0)) {
    throw new Error(`makeOptimizer(${name}): need betas in [0, 1), eps >= 0, weightDecay >= 0`);
  }
  if (name === "adam-atan2" && !(h.lrPeak > 0)) {
    throw new Error(`makeOptimizer(${name}): lrPeak must be > 0, got ${h.lrPeak}`);
  }
}
