import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import { defaultTrainDifficulties, generateTask, type TaskName } from "../src/data/tasks/index.ts";
import {
  type WindowContext,
  suggestAttentionWindow,
  suggestDepthPerDifficulty,
} from "../src/train/window.ts";

const TIED: WindowContext = { coreLayers: 2, depthPerDifficulty: 1 };

/** Examples whose prompt is `head` plus `unit` repeated d times, for d in `levels`. */
function scan(unit: string, answer: (d: number) => string, levels = [1, 2, 3, 4]): Example[] {
  return levels.flatMap((d) => [
    { prompt: `s:${unit.repeat(d)}`, answer: answer(d), difficulty: d },
    { prompt: `t:${unit.repeat(d)}`, answer: answer(d), difficulty: d },
  ]);
}

test("a scan of short levels gets the smallest window whose light cone crosses one level per iteration", () => {
  // w = 1 + ceil(s / (L * c)) for s <= 2L prompt characters per level, L core blocks, c iterations
  const cases: [string, WindowContext, number][] = [
    ["1", TIED, 2],
    ["12,", TIED, 3],
    ["1234", TIED, 3],
    ["12,", { coreLayers: 2, depthPerDifficulty: 2 }, 2],
    ["k=r,v=c,", { coreLayers: 4, depthPerDifficulty: 1 }, 3],
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

test("a scan of long levels gets a window reaching 1.5 levels per iteration and two iterations per level", () => {
  // s > 2L: w = 1 + ceil(1.5 s / L) whatever c, and c = 2 unless the user sets it
  const cases: [string, number, number][] = [
    ["k=r,v=c,", 2, 7],
    ["12,34", 2, 5],
    ["12,", 1, 6],
  ];
  for (const [unit, coreLayers, window] of cases) {
    const examples = scan(unit, () => "3");
    for (const c of [1, 2, 3]) {
      const choice = suggestAttentionWindow(examples, { coreLayers, depthPerDifficulty: c });
      assert.equal(choice.window, window, `${unit} L=${coreLayers} c=${c}`);
      assert.match(choice.reason, /^a scan of long levels: /);
    }
    const depth = suggestDepthPerDifficulty(examples, coreLayers);
    assert.equal(depth?.depthPerDifficulty, 2, unit);
    assert.match(
      depth.reason,
      /^long levels: the prompt grows by \d characters per difficulty level/,
    );
  }
  // short levels and anything that is not a scan keep the default depth
  assert.equal(
    suggestDepthPerDifficulty(
      scan("1234", () => "3"),
      2,
    ),
    null,
  );
  assert.equal(
    suggestDepthPerDifficulty(
      scan("k=r,v=c,", (d) => "9".repeat(d)),
      2,
    ),
    null,
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

test("the rules give the built-in tasks the settings measured to learn and extrapolate", () => {
  // bench/recipe-notes.md: parity w = 2 and swaps w = 3 reach twice the trained length (swaps
  // at w = 2 stayed at chance; session 6); pointer-chasing and reachability chain 1-4 hops
  // with c = 2, w = 7 (sessions 8-11); addition's answer grows, so full attention
  const expected: [TaskName, number, number | undefined][] = [
    ["parity", 2, undefined],
    ["swaps", 3, undefined],
    ["pointer-chasing", 7, 2],
    ["reachability", 7, 2],
    ["addition", 0, undefined],
  ];
  for (const [name, window, depth] of expected) {
    const examples = generateTask(name, {
      split: "train",
      count: 400,
      seed: 0,
      difficulties: defaultTrainDifficulties(name),
    });
    assert.equal(suggestAttentionWindow(examples, TIED).window, window, name);
    assert.equal(suggestDepthPerDifficulty(examples, 2)?.depthPerDifficulty, depth, name);
  }
});
