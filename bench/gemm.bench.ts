// SGEMM throughput of the native backend (and the js one, at one small shape for scale).
//   node --import tsx bench/gemm.bench.ts [--smoke]      LOOM_THREADS=1 for a single thread
// Validates first: every transpose against gemmNaive at an odd size, then 64 sampled entries
// of each benchmarked product against a float64 dot product. Then, per shape: warm up, time
// repetitions of >= 0.2 s, report the best and median of 5 as GFLOP/s = 2·m·n·k / time.
import type { Backend, GemmShape } from "../src/backend/backend.ts";
import { gemmNaive } from "../src/backend/js/gemm.ts";
import { jsBackend } from "../src/backend/js/index.ts";
import { loadNativeBackend } from "../src/node/native.ts";
import { Rng } from "../src/tensor/random.ts";

const smoke = process.argv.includes("--smoke");
const loaded = loadNativeBackend();
if ("error" in loaded) throw new Error(loaded.error);
const native = loaded.backend;
const rng = new Rng(7);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);

function validate(s: GemmShape, c: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let t = 0; t < 64; t++) {
    const i = rng.int(s.m);
    const j = rng.int(s.n);
    let sum = 0;
    let mag = 0; // Σ|a||b|: the scale of the rounding error
    for (let p = 0; p < s.k; p++) {
      const ab =
        (s.transA ? a[p * s.m + i] : a[i * s.k + p]) * (s.transB ? b[j * s.k + p] : b[p * s.n + j]);
      sum += ab;
      mag += Math.abs(ab);
    }
    if (Math.abs(c[i * s.n + j] - sum) > 1e-5 * mag) {
      throw new Error(`gemm wrong at (${i}, ${j}): ${c[i * s.n + j]} vs ${sum}`);
    }
  }
}

function bench(be: Backend, m: number, k: number, n: number, transA = false, transB = false): void {
  const s: GemmShape = { m, n, k, transA, transB, accumulate: false };
  const a = rand(m * k);
  const b = rand(k * n);
  const c = new Float32Array(m * n);
  be.gemm(c, a, b, s);
  validate(s, c, a, b);
  const times: number[] = [];
  for (let r = 0; r < (smoke ? 1 : 5); r++) {
    let reps = 0;
    const t0 = performance.now();
    do {
      be.gemm(c, a, b, s);
      reps++;
    } while (!smoke && performance.now() - t0 < 200);
    times.push((performance.now() - t0) / reps);
  }
  times.sort((x, y) => x - y);
  const gflops = (ms: number) => ((2 * m * n * k) / ms / 1e6).toFixed(1);
  const op = `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"}`;
  const shape = `(${m}x${k})·(${k}x${n}) ${op}`.padEnd(28);
  console.log(
    `${be.name.padEnd(6)} ${shape} best ${gflops(times[0])} GFLOP/s, median ${gflops(times[times.length >> 1])}` +
      `  (${times[0] < 1 ? `${(times[0] * 1000).toFixed(1)} µs` : `${times[0].toFixed(2)} ms`})`,
  );
}

// every transpose, accumulating, at an odd size, against the definition
for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    const s: GemmShape = { m: 67, n: 45, k: 131, transA, transB, accumulate: true };
    const [a, b, c0] = [rand(s.m * s.k), rand(s.k * s.n), rand(s.m * s.n)];
    const [want, got] = [c0.slice(), c0.slice()];
    gemmNaive(want, a, b, s);
    native.gemm(got, a, b, s);
    want.forEach((w, i) => {
      if (Math.abs(w - got[i]) > 1e-4)
        throw new Error(`gemm tA=${transA} tB=${transB} wrong at ${i}`);
    });
  }
}
console.log(
  `native backend: ${native.isa} micro-kernel, ${native.threads} thread(s); all checks passed`,
);
bench(native, 2048, 256, 768);
bench(native, 2048, 768, 256);
bench(native, 2048, 768, 256, false, true); // dX = dY · Wᵀ
bench(native, 256, 2048, 768, true, false); // dW = Xᵀ · dY
bench(native, 256, 256, 256);
bench(native, 1024, 512, 512);
bench(native, 4096, 512, 2048);
bench(native, 1, 256, 1024); // decode matvec
bench(native, 1, 256, 1024, false, true);
bench(jsBackend, 256, 256, 256);
