/**
 * Size and cost of a configuration, computed from shapes (no weights needed), so `loom info`
 * works for Huginn-0125 itself: 3,564,976,800 unique parameters, 52.6 B materialized at r = 32.
 */
import { expectedShapes } from "./checkpoint.ts";
import type { ModelConfig } from "./config.ts";

export interface ModelStats {
  uniqueParams: number; // every stored parameter once (a tied head counted once)
  coreParams: number; // the recurrent blocks, which are re-applied r times
  materializedParams: number; // parameters a fixed-depth model of the same compute would have
  layersApplied: number; // prelude + r · core + coda blocks run per token
  forwardFlopsPerToken: number; // 2 · (matmul weights touched) + attention at `context` keys
  kvSlotsPerToken: number; // one K/V slot per (layer, iteration)
  kvBytesPerToken: number; // K and V of every slot, at `bytesPerValue`
}

export function modelStats(
  c: ModelConfig,
  r: number,
  context: number,
  bytesPerValue = 4,
): ModelStats {
  const count = (pred: (key: string) => boolean): number =>
    expectedShapes(c)
      .filter(([k]) => pred(k))
      .reduce((sum, [, shape]) => sum + shape.reduce((a, b) => a * b, 1), 0);
  const uniqueParams = count(() => true);
  const coreParams = count((k) => k.startsWith("transformer.core_block."));
  const adapterParams = count((k) => k === "transformer.adapter.weight");
  const outsideCore = count(
    (k) => k.startsWith("transformer.prelude.") || k.startsWith("transformer.coda."),
  );
  const headParams = c.paddedVocabSize * c.nEmbd;
  const layersApplied = c.nLayersInPrelude + r * c.nLayersInRecurrentBlock + c.nLayersInCoda;
  // matmul weights: the norms are a rounding error, counted anyway for simplicity
  const matmulWeights = outsideCore + r * (coreParams + adapterParams) + headParams;
  // attention: q·kᵀ and p·v over the keys in view (`context`, or the window), 2 FLOPs per
  // multiply-add, per layer
  const keys = c.attentionWindow > 0 ? Math.min(c.attentionWindow, context) : context;
  const attentionFlops = layersApplied * 4 * c.nEmbd * keys;
  const kvSlotsPerToken = layersApplied;
  return {
    uniqueParams,
    coreParams,
    materializedParams: uniqueParams + (r - 1) * coreParams,
    layersApplied,
    forwardFlopsPerToken: 2 * matmulWeights + attentionFlops,
    kvSlotsPerToken,
    kvBytesPerToken: kvSlotsPerToken * 2 * c.nEmbd * bytesPerValue,
  };
}
