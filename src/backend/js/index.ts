// The pure-TypeScript backend: the spec every other backend is tested against. Runs everywhere.
import type { Backend } from "../backend.ts";
import { attentionBackward, attentionForward } from "./attention.ts";
import { gemm } from "./gemm.ts";
import {
  adamw,
  addRows,
  crossEntropy,
  rmsNormBackward,
  rmsNormForward,
  rope,
  swigluBackward,
  swigluForward,
} from "./pointwise.ts";

export const jsBackend: Backend = {
  name: "js",
  threads: 1,
  gemm,
  attentionForward,
  attentionBackward,
  rmsNormForward,
  rmsNormBackward,
  rope,
  addRows,
  swigluForward,
  swigluBackward,
  crossEntropy,
  adamw,
};
