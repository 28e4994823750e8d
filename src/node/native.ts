// The native backend in Node: loads the N-API addon that `npm install` builds from native/
// (scripts/build-native.js) and wraps it as a Backend. selectBackend() picks the backend for
// the process: LOOM_BACKEND=js|native when set, else native when the addon loads, else js.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { AttentionShape, Backend } from "../backend/backend.ts";
import { jsBackend } from "../backend/js/index.ts";
import { useBackend } from "../backend/select.ts";

const addonPath = fileURLToPath(
  new URL("../../native/build/Release/loom_native.node", import.meta.url),
);
const buildErrorPath = fileURLToPath(new URL("../../native/build/error.txt", import.meta.url));

/** The addon's exports (native/addon.c): the kernels with their shapes spread into numbers. */
interface Addon {
  threads(): number;
  limitThreads(n: number): number;
  readonly isa: string; // the GEMM micro-kernel in use: "avx512" | "avx2" | "generic"
  gemm(
    c: Float32Array,
    a: Float32Array,
    b: Float32Array,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
  ): void;
  attentionForward(
    out: Float32Array,
    probs: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    ...shape: AttentionArgs
  ): void;
  attentionBackward(
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dout: Float32Array,
    probs: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    ...shape: AttentionArgs
  ): void;
  rmsNormForward: Backend["rmsNormForward"];
  rmsNormBackward: Backend["rmsNormBackward"];
  rope: Backend["rope"];
  addRows(
    dst: Float32Array,
    a: Float32Array,
    b: Float32Array | null,
    bias: Float32Array | null,
    rows: number,
    width: number,
    dstStride: number,
    aStride: number,
    bStride: number,
    accumulate: boolean,
  ): void;
  swigluForward: Backend["swigluForward"];
  swigluBackward: Backend["swigluBackward"];
  crossEntropy: Backend["crossEntropy"];
  adamw(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
}

/** batch, heads, headDim, tq, tk, qStride, kvStride, qPos, kPos, keyMask, window, qPlaces, kPlaces */
type AttentionArgs = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  Int32Array | null,
  Int32Array | null,
  Uint8Array | null,
  number,
  Int32Array | null,
  Int32Array | null,
];

export interface NativeBackend extends Backend {
  readonly name: "native";
  /** The GEMM micro-kernel picked at load time: "avx512", "avx2" or "generic". */
  readonly isa: string;
  /** Use at most n threads from now on (process-wide); returns the count now in use. */
  limitThreads(n: number): number;
}

function wrap(addon: Addon): NativeBackend {
  return {
    name: "native",
    get threads() {
      return addon.threads();
    },
    isa: addon.isa,
    limitThreads: (n) => addon.limitThreads(n),
    gemm: (c, a, b, s) => {
      addon.gemm(c, a, b, s.m, s.n, s.k, s.transA, s.transB, s.accumulate);
    },
    attentionForward: (out, probs, q, k, v, s) => {
      addon.attentionForward(out, probs, q, k, v, ...attentionArgs(s));
    },
    attentionBackward: (dq, dk, dv, dout, probs, q, k, v, s) => {
      addon.attentionBackward(dq, dk, dv, dout, probs, q, k, v, ...attentionArgs(s));
    },
    rmsNormForward: addon.rmsNormForward,
    rmsNormBackward: addon.rmsNormBackward,
    rope: addon.rope,
    addRows: (dst, a, b, bias, s) => {
      const w = s.width;
      const [ds, as, bs] = [s.dstStride ?? w, s.aStride ?? w, s.bStride ?? w];
      addon.addRows(dst, a, b, bias, s.rows, w, ds, as, bs, s.accumulate);
    },
    swigluForward: addon.swigluForward,
    swigluBackward: addon.swigluBackward,
    crossEntropy: addon.crossEntropy,
    adamw: (p, g, m, v, h) => {
      addon.adamw(p, g, m, v, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.step);
    },
  };
}

function attentionArgs(s: AttentionShape): AttentionArgs {
  const { batch, heads, headDim, tq, tk } = s;
  const C = heads * headDim;
  const strides = [s.qStride ?? C, s.kvStride ?? C] as const;
  return [
    batch,
    heads,
    headDim,
    tq,
    tk,
    ...strides,
    s.qPos ?? null,
    s.kPos ?? null,
    s.keyMask ?? null,
    s.window ?? 0,
    s.qPlaces ?? null,
    s.kPlaces ?? null,
  ];
}

/**
 * Lets native kernels use at most `n` threads from now on, process-wide (data-parallel training
 * gives each JS thread a core of its own); a no-op when the addon is not loaded.
 */
export function limitNativeThreads(n: number): void {
  if (loaded !== undefined && "backend" in loaded) loaded.backend.limitThreads(n);
}

let loaded: { backend: NativeBackend } | { error: string } | undefined;

/** The native backend, or why it is unavailable (the answer is computed once). */
export function loadNativeBackend(): { backend: NativeBackend } | { error: string } {
  loaded ??= load();
  return loaded;
}

function load(): { backend: NativeBackend } | { error: string } {
  if (!existsSync(addonPath)) {
    const why = existsSync(buildErrorPath)
      ? `its build failed: ${readFileSync(buildErrorPath, "utf8").trim()}`
      : "it was never built";
    return {
      error: `native backend not built (${why}); run \`node scripts/build-native.js\` to build it`,
    };
  }
  try {
    const addon = createRequire(import.meta.url)(addonPath) as Addon;
    return { backend: wrap(addon) };
  } catch (e) {
    return {
      error: `native backend failed to load: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/**
 * Picks and activates (useBackend) the backend for this process and returns it:
 * LOOM_BACKEND=js or native forces one (native unavailable -> throws, saying why); otherwise
 * native when it loads, else js (loadNativeBackend() then says why).
 */
export function selectBackend(): Backend {
  const want = process.env.LOOM_BACKEND ?? "";
  if (want !== "" && want !== "js" && want !== "native") {
    throw new Error(`LOOM_BACKEND must be "js" or "native", not "${want}"`);
  }
  let chosen: Backend = jsBackend;
  if (want !== "js") {
    const native = loadNativeBackend();
    if ("backend" in native) chosen = native.backend;
    else if (want === "native") throw new Error(`LOOM_BACKEND=native: ${native.error}`);
  }
  useBackend(chosen);
  return chosen;
}
