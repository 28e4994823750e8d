import assert from "node:assert/strict";
import { test } from "node:test";
import type { Example } from "../src/data/example.ts";
import {
  defaultTestDifficulties,
  defaultTrainDifficulties,
  generateTask,
  isTaskName,
  scoreAnswer,
  TASK_NAMES,
  type Split,
  type TaskName,
} from "../src/data/tasks/index.ts";

function generate(name: TaskName, split: Split, count: number, seed = 1): Example[] {
  const difficulties =
    split === "train" ? defaultTrainDifficulties(name) : defaultTestDifficulties(name);
  return generateTask(name, { split, count, seed, difficulties });
}

/** Examples of one difficulty. */
function at(examples: Example[], difficulty: number): Example[] {
  return examples.filter((e) => e.difficulty === difficulty);
}

test("generation is deterministic per seed and split", () => {
  for (const name of TASK_NAMES) {
    assert.deepEqual(generate(name, "train", 50, 9), generate(name, "train", 50, 9), name);
    assert.notDeepEqual(generate(name, "train", 50, 9), generate(name, "train", 50, 10), name);
    assert.deepEqual(generate(name, "test", 50, 9), generate(name, "test", 50, 9), name);
  }
});

test("train and test splits share no prompt, whatever the seeds", () => {
  for (const name of TASK_NAMES) {
    const train = new Set(generate(name, "train", 3000, 1).map((e) => e.prompt));
    const test = generate(name, "test", 3000, 1).concat(generate(name, "test", 1000, 2));
    assert.ok(train.size > 500, name);
    assert.equal(test.filter((e) => train.has(e.prompt)).length, 0, name);
  }
});

test("difficulties are spread evenly and recorded on each example", () => {
  for (const name of TASK_NAMES) {
    const difficulties = defaultTrainDifficulties(name);
    const examples = generate(name, "train", 10 * difficulties.length + 3);
    const counts = difficulties.map((d) => at(examples, d).length);
    assert.deepEqual(
      counts,
      difficulties.map((_, i) => (i < 3 ? 11 : 10)),
      name,
    );
    assert.equal(examples.filter((e) => !difficulties.includes(e.difficulty ?? -1)).length, 0);
  }
});

test("default difficulties: short training sequences, tests to twice the hardest", () => {
  for (const name of TASK_NAMES) {
    const train = defaultTrainDifficulties(name);
    const testDifficulties = defaultTestDifficulties(name);
    assert.equal(Math.max(...testDifficulties), 2 * Math.max(...train), name);
    assert.ok(
      train.every((d) => testDifficulties.includes(d)),
      name,
    );
    const longest = Math.max(
      ...generate(name, "train", 500).map((e) => e.prompt.length + e.answer.length),
    );
    assert.ok(longest <= 64, `${name}: ${longest} chars`);
  }
});

test("addition: d-digit operands, sum most-significant digit first (checked by BigInt)", () => {
  const examples = generate("addition", "test", 800);
  for (const { prompt, answer, difficulty } of examples) {
    const match = /^(\d+)\+(\d+)=$/.exec(prompt);
    assert.ok(match, prompt);
    const [, a, b] = match;
    assert.equal(a.length, difficulty);
    assert.equal(b.length, difficulty);
    assert.equal(answer, (BigInt(a) + BigInt(b)).toString(), prompt);
  }
});

/** The assignments of a pointer-chasing prompt (`q?` assignments `;q?`) and its query. */
function parseBindings(prompt: string): { assignments: string[]; query: string } {
  const match = /^([a-z])\?([a-z]=[a-z0-9](?:,[a-z]=[a-z0-9])*);\1\?$/.exec(prompt);
  assert.ok(match, prompt);
  return { assignments: match[2].split(","), query: match[1] };
}

/** Follow the bindings of `prompt` from the queried variable; the digit and the hops taken. */
function resolveBindings(prompt: string): { value: string; hops: number } {
  const { assignments, query } = parseBindings(prompt);
  const bindings = new Map(assignments.map((s) => [s[0], s[2]] as const));
  assert.equal(bindings.size, assignments.length, "each variable assigned once");
  let name = query;
  for (let hops = 1; ; hops++) {
    const next = bindings.get(name);
    assert.ok(next !== undefined, `unbound ${name} in ${prompt}`);
    if (/\d/.test(next)) return { value: next, hops };
    name = next;
  }
}

/** One left-to-right pass: a name is on the queried chain if an earlier assignment led to it. */
function resolveInOnePass(prompt: string): string | undefined {
  const { assignments, query } = parseBindings(prompt);
  let name = query;
  for (const s of assignments) if (s[0] === name) name = s[2];
  return /\d/.test(name) ? name : undefined;
}

test("pointer-chasing: the answer is the queried variable's value, `difficulty` hops away", () => {
  for (const { prompt, answer, difficulty } of generate("pointer-chasing", "test", 800)) {
    assert.deepEqual(resolveBindings(prompt), { value: answer, hops: difficulty }, prompt);
    const digits = new Set(prompt.match(/\d/g));
    assert.equal(digits.size, 2, `a distractor chain with another value: ${prompt}`);
    assert.equal(resolveInOnePass(prompt), answer, `chains written goal-first: ${prompt}`);
  }
});

/** Shortest path length from `from` to `to` by breadth-first search, or null if unreachable. */
function shortestPath(edges: string[], from: string, to: string): number | null {
  let frontier = [from];
  const seen = new Set(frontier);
  for (let depth = 0; frontier.length > 0; depth++) {
    if (frontier.includes(to)) return depth;
    frontier = edges.filter((e) => frontier.includes(e[0]) && !seen.has(e[1])).map((e) => e[1]);
    for (const node of frontier) seen.add(node);
  }
  return null;
}

/** The last node reached from `from` in one left-to-right pass that follows edges out of it. */
function lastReachedInOnePass(edges: string[], from: string): string {
  let node = from;
  for (const e of edges) if (e[0] === node) node = e[1];
  return node;
}

test("reachability: the one choice reachable (BFS) at the difficulty, acyclic, balanced", () => {
  const examples = generate("reachability", "test", 800);
  for (const { prompt, answer, difficulty } of examples) {
    const match = /^([a-z]):([a-z])\/([a-z])\?([a-z]{2}(?:,[a-z]{2})*);\1\?$/.exec(prompt);
    assert.ok(match, prompt);
    const [, from, first, second, list] = match;
    const edges = list.split(",");
    const hops = difficulty ?? 0;
    assert.equal(edges.length, 2 * hops + Math.floor(hops / 2), prompt);
    assert.equal(prompt.length, 3 * edges.length + 8, `the documented length: ${prompt}`);
    assert.equal(new Set(edges).size, edges.length, `no repeated edge: ${prompt}`);
    const other = answer === first ? second : first;
    assert.ok([first, second].includes(answer), prompt);
    assert.equal(shortestPath(edges, from, answer), difficulty, prompt);
    assert.equal(shortestPath(edges, from, other), null, prompt);
    assert.equal(lastReachedInOnePass(edges, from), answer, `path order: ${prompt}`);
    for (const e of edges)
      assert.equal(shortestPath(edges, e[1], e[0]), null, `acyclic: ${prompt}`);
    const degree = (node: string, end: 0 | 1) => edges.filter((e) => e[end] === node).length;
    assert.equal(degree(from, 1), 0, `the source is never entered: ${prompt}`);
    for (const choice of [first, second]) {
      assert.deepEqual([degree(choice, 1), degree(choice, 0)], [1, 0], `${choice}: ${prompt}`);
    }
  }
  for (const d of defaultTestDifficulties("reachability")) {
    const level = at(examples, d);
    const firsts = level.filter((e) => e.prompt[2] === e.answer).length;
    assert.equal(firsts, level.length / 2, `difficulty ${d}`);
  }
});

test("parity: answer is the count of ones mod 2, both answers common in each split", () => {
  for (const split of ["train", "test"] as const) {
    const examples = generate("parity", split, 3000);
    for (const { prompt, answer, difficulty } of examples) {
      assert.match(prompt, /^[01]+$/);
      assert.equal(prompt.length, difficulty);
      assert.equal(answer, String(prompt.split("").filter((c) => c === "1").length % 2));
    }
    const odd = examples.filter((e) => (e.difficulty ?? 0) >= 8 && e.answer === "1").length;
    const long = examples.filter((e) => (e.difficulty ?? 0) >= 8).length;
    assert.ok(Math.abs(odd / long - 0.5) < 0.1, `${split}: ${odd} odd of ${long}`);
  }
});

test("bad options and too-small instance spaces throw", () => {
  const options = { split: "train", count: 4, seed: 1, difficulties: [2] } as const;
  assert.throws(
    () => generateTask("addition", { ...options, difficulties: [0] }),
    /addition: difficulty 0/,
  );
  assert.throws(() => generateTask("reachability", { ...options, difficulties: [13] }), RangeError);
  assert.throws(() => generateTask("parity", { ...options, difficulties: [2.5] }), RangeError);
  assert.throws(() => generateTask("parity", { ...options, difficulties: [] }), /no difficulties/);
  assert.throws(() => generateTask("parity", { ...options, count: -1 }), /count/);
  assert.throws(
    () => generateTask("parity", { ...options, split: "test", difficulties: [1] }),
    /no test-split instance at difficulty 1/,
  );
  assert.deepEqual(generateTask("parity", { ...options, count: 0 }), []);
});

test("scoreAnswer is exact match after trimming", () => {
  assert.ok(scoreAnswer(" 125\n", "125"));
  assert.ok(!scoreAnswer("1 25", "125"));
  assert.ok(!scoreAnswer("12", "125"));
});

test("isTaskName accepts exactly the built-in tasks", () => {
  assert.ok(TASK_NAMES.every(isTaskName));
  assert.ok(!isTaskName("sorting"));
});

test("swaps: replaying the moves gives the answer; all three answers common at 6 swaps", () => {
  for (const split of ["train", "test"] as const) {
    const examples = generateTask("swaps", {
      split,
      count: 3000,
      seed: 5,
      difficulties: [1, 3, 6],
    });
    const counts = [0, 0, 0];
    for (const ex of examples) {
      const [start, moves] = ex.prompt.split(":");
      let ball = Number(start);
      const list = moves.split(",");
      assert.equal(list.length, ex.difficulty);
      for (const m of list) {
        const [a, b] = [Number(m[0]), Number(m[1])];
        assert.ok(a < b && a >= 1 && b <= 3, m);
        if (ball === a) ball = b;
        else if (ball === b) ball = a;
      }
      assert.equal(ex.answer, String(ball));
      if (ex.difficulty === 6) counts[ball - 1]++; // 1 swap has only 9 prompts to split
    }
    for (const c of counts) assert.ok(c > 250, `answers spread: ${counts.join(", ")}`);
  }
});
