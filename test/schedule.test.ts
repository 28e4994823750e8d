import assert from "node:assert/strict";
import { test } from "node:test";
import { learningRate, type ScheduleConfig } from "../src/train/schedule.ts";

const CFG: ScheduleConfig = {
  maxLr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 9,
  totalSteps: 109,
  cooldownSteps: 20,
};

function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-15, `${actual} != ${expected}`);
}

test("warm-up is linear from maxLr/(W+1) to maxLr·W/(W+1)", () => {
  for (const name of ["warmup-cosine", "warmup-constant-cooldown"] as const) {
    near(learningRate(name, 0, CFG), 1e-4);
    near(learningRate(name, 4, CFG), 5e-4);
    near(learningRate(name, 8, CFG), 9e-4);
  }
});

test("warmup-cosine: peak after warm-up, midpoint halfway, floor at and after the end", () => {
  const lr = (step: number) => learningRate("warmup-cosine", step, CFG);
  near(lr(9), 1e-3);
  near(lr(59), 5.5e-4); // ratio 0.5: minLr + 0.5·(maxLr − minLr)
  near(lr(34), 1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4); // ratio 0.25
  near(lr(109), 1e-4);
  near(lr(10_000), 1e-4);
  assert.ok(lr(108) > 1e-4 && lr(108) < 1.01e-4);
});

test("warmup-constant-cooldown: constant, then a straight line to minLr", () => {
  const lr = (step: number) => learningRate("warmup-constant-cooldown", step, CFG);
  near(lr(9), 1e-3);
  near(lr(88), 1e-3); // last constant step: T − C − 1
  near(lr(89), 1e-3); // cooldown starts at T − C
  near(lr(99), 5.5e-4); // halfway down
  near(lr(104), 3.25e-4);
  near(lr(109), 1e-4);
  near(lr(500), 1e-4);
});

test("Huginn-0125 in effect: 4096 warm-up steps, then constant 4e-5", () => {
  const huginn = { maxLr: 4e-5, minLr: 0, warmupSteps: 4096, totalSteps: 1e6, cooldownSteps: 4096 };
  near(learningRate("warmup-constant-cooldown", 2047, huginn), 2e-5 * (4096 / 4097));
  near(learningRate("warmup-constant-cooldown", 47_360, huginn), 4e-5);
});

test("no warm-up starts at the peak", () => {
  const cfg = { ...CFG, warmupSteps: 0 };
  near(learningRate("warmup-cosine", 0, cfg), 1e-3);
  near(learningRate("warmup-constant-cooldown", 0, cfg), 1e-3);
});

test("inconsistent configurations are rejected", () => {
  assert.throws(() => learningRate("warmup-cosine", 0, { ...CFG, minLr: 2e-3 }), /minLr/);
  assert.throws(() => learningRate("warmup-cosine", 0, { ...CFG, warmupSteps: 1.5 }), /integers/);
  assert.throws(
    () => learningRate("warmup-constant-cooldown", 0, { ...CFG, cooldownSteps: 101 }),
    /exceed/,
  );
  assert.doesNotThrow(() => learningRate("warmup-cosine", 0, { ...CFG, cooldownSteps: 101 }));
});
