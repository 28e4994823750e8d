// The packed GEMM of the TypeScript backend against its spec, the naive triple loop, on every
// transpose combination, with and without accumulation, at odd sizes.
import { test } from "node:test";
import { gemm, gemmNaive } from "../src/backend/js/gemm.ts";
import { Rng } from "../src/tensor/random.ts";
import { assertClose } from "./helpers.ts";

test("gemm == gemmNaive for all transposes and odd shapes", () => {
  const rng = new Rng(11);
  for (const [m, n, k] of [
    [1, 1, 1],
    [3, 5, 7],
    [4, 4, 4],
    [9, 6, 33],
    [17, 13, 5],
    [64, 3, 10],
  ]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const accumulate of [false, true]) {
          const a = rng.fillNormal(new Float32Array(m * k));
          const b = rng.fillNormal(new Float32Array(k * n));
          const c0 = rng.fillNormal(new Float32Array(m * n));
          const want = c0.slice();
          const got = c0.slice();
          const s = { m, n, k, transA, transB, accumulate };
          gemmNaive(want, a, b, s);
          gemm(got, a, b, s);
          assertClose(
            got,
            want,
            1e-5 * k,
            `gemm ${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate}`,
          );
        }
      }
    }
  }
});
