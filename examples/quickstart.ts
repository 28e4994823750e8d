// The README's library example: a tiny looped model, inference at r = 16, one truncated-backprop
// step. Run: node --import tsx examples/quickstart.ts
import { Rng, backward, forward, initModel, presets } from "../src/index.ts";

const model = initModel(presets.tiny, new Rng(0));
const ids = Int32Array.from([1, 5, 9, 2, 7, 3]); // (B = 1, T = 6)

// inference: 16 recurrences from a random initial state
const { logits, latentStates } = forward(model, ids, {
  batch: 1,
  numSteps: 16,
  init: { mode: "like-init", rng: new Rng(1) },
});

// training: 6 steps without gradient, then 2 with (truncated backprop), pre-shifted labels
const labels = Int32Array.from([5, 9, 2, 7, 3, -100]);
const out = forward(model, ids, { batch: 1, numSteps: { noGrad: 6, withGrad: 2 }, labels });
if (out.loss === null) throw new Error("labels were given, so there is a loss");
backward(out.loss);

console.log(`logits [${logits.shape.join(", ")}], latents [${latentStates.shape.join(", ")}]`);
console.log(
  `loss ${out.loss.data[0].toFixed(4)}, |grad wte| ${norm(model.params.wte.grad).toFixed(4)}`,
);

function norm(g: Float32Array | null): number {
  return Math.hypot(...(g ?? []));
}
