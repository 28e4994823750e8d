import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import { defaultTrainDifficulties, generateTask, type TaskName } from "../src/data/tasks/index.ts";
import { type WindowContext, suggestAttentionWindow } from "../src/train/window.ts";

const TIED: WindowContext = { coreLayers: 2, depthPerDifficulty: 1 };

/** Examples whose prompt is `head` plus `unit` repeated d times, for d in `levels`. */
function scan(unit: string, answer: (d: number) => string, levels = [1, 2, 3, 4]): Example[] {
  return levels.flatMap((d) => [
    { prompt: `s:${unit.repeat(d)}`, answer: answer(d), difficulty: d },
    { prompt: `t:${unit.repeat(d)}`, answer: answer(d), difficulty: d },
  ]);
}

test("a scan gets the smallest window whose light cone crosses one level per iteration", () => {
  // w = 1 + ceil(s / (L * c)) for s prompt characters per level, L core blocks, c iterations
  const cases: [string, WindowContext, number][] = [
    ["1", TIED, 2],
    ["12,", TIED, 3],
    ["k=r,v=c,", TIED, 5],
    ["12,", { coreLayers: 1, depthPerDifficulty: 1 }, 4],
    ["12,", { coreLayers: 2, depthPerDifficulty: 2 }, 2],
  ];
  for (const [unit, ctx, window] of cases) {
    assert.equal(
      suggestAttentionWindow(
        scan(unit, () => "3"),
        ctx,
      ).window,
      window,
      unit,
    );
  }
  assert.match(
    suggestAttentionWindow(
      scan("12,", () => "3"),
      TIED,
    ).reason,
    /3 characters/,
  );
});

test("anything that does not look like a scan gets full attention, with the reason", () => {
  const cases: [Example[], WindowContext, RegExp][] = [
    [scan("12", (d) => "9".repeat(d)), TIED, /answer grows/],
    [scan("1", () => "0", [1, 2]), TIED, /fewer than 3/],
    [
      scan("1", () => "0").map(({ prompt, answer }) => ({ prompt, answer })),
      TIED,
      /not every example/,
    ],
    [scan("", () => "0"), TIED, /prompt does not grow/],
    [scan("1", () => "0"), { coreLayers: 2, depthPerDifficulty: null }, /not tied/],
  ];
  for (const [examples, ctx, reason] of cases) {
    const choice = suggestAttentionWindow(examples, ctx);
    assert.equal(choice.window, 0, choice.reason);
    assert.match(choice.reason, reason);
  }
});

test("the rule gives the built-in tasks the windows measured to extrapolate", () => {
  // bench/recipe-notes.md, session 6: parity w = 2 and swaps w = 3 reach twice the trained
  // length (swaps at w = 2 stayed at chance); addition's answer grows, so full attention
  const expected: [TaskName, number][] = [
    ["parity", 2],
    ["swaps", 3],
    ["addition", 0],
  ];
  for (const [name, window] of expected) {
    const examples = generateTask(name, {
      split: "train",
      count: 400,
      seed: 0,
      difficulties: defaultTrainDifficulties(name),
    });
    assert.equal(suggestAttentionWindow(examples, TIED).window, window, name);
  }
});
