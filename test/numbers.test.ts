import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import {
  TASK_NAMES,
  defaultTrainDifficulties,
  generateTask,
  type TaskName,
} from "../src/data/tasks/index.ts";
import { suggestAbacus } from "../src/train/numbers.ts";

function trainingData(task: TaskName): Example[] {
  return generateTask(task, {
    count: 2000,
    difficulties: defaultTrainDifficulties(task),
    split: "train",
    seed: 0,
  });
}

/** `d`-digit operands of nines: the answer has d + 1 digits. */
function sums(levels: number[], answer = (d: number) => `1${"8".repeat(d - 1)}8`): Example[] {
  return levels.map((d) => ({
    prompt: `${"9".repeat(d)}+${"9".repeat(d)}=`,
    answer: answer(d),
    difficulty: d,
  }));
}

test("addition's training data gets Abacus places for twice its longest number, turning RoPE", () => {
  const choice = suggestAbacus(trainingData("addition"));
  assert.ok(choice !== null);
  // sums of 2-8 digits: the longest number is a 9-digit sum, P = 2 * 9 + 2
  assert.equal(choice.places, 20);
  assert.equal(choice.rotaryPositions, "place");
  assert.match(choice.reason, /number that grows with the difficulty/);
});

test("the other built-in tasks get no Abacus places", () => {
  for (const task of TASK_NAMES.filter((t) => t !== "addition")) {
    assert.equal(suggestAbacus(trainingData(task)), null, task);
  }
});

test("places follow the longest run of digits, in the prompt or the answer", () => {
  assert.equal(suggestAbacus(sums([1, 2, 3]))?.places, 2 * 4 + 2);
  const longPrompt = [...sums([1, 2, 3]), { prompt: "1234567*0=", answer: "0", difficulty: 1 }];
  assert.equal(suggestAbacus(longPrompt)?.places, 2 * 7 + 2);
});

test("answers that are not numbers, do not grow, or have no difficulty trend get nothing", () => {
  assert.equal(suggestAbacus(sums([1, 2, 3], (d) => `${d}`)), null, "the answer does not grow");
  assert.equal(suggestAbacus(sums([1, 2, 3], (d) => "-1".repeat(d))), null, "not digits");
  assert.equal(suggestAbacus(sums([1, 2])), null, "two levels tell no trend");
  const noDifficulty = sums([1, 2, 3]).map(({ prompt, answer }) => ({ prompt, answer }));
  assert.equal(suggestAbacus(noDifficulty), null, "no difficulties");
});
