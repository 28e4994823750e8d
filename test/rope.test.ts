// The rotary table: the reference's frequencies by default; with rotary_pct (loom's extension)
// only the first pairs turn, at frequencies spread over them, and rotary_pct 0 turns nothing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ropeTable } from "../src/model/rope.ts";

const f32 = Math.fround;

test("rotary_pct 1 is the reference's table: inv_freq_i = 1 / base^(2i / D)", () => {
  const t = ropeTable(8, 6, 1e4, 1);
  assert.deepEqual(t, ropeTable(8, 6, 1e4));
  for (let i = 0; i < 4; i++) {
    const theta = f32(5 * f32(1 / f32(1e4 ** f32((2 * i) / 8))));
    assert.equal(t.cos[5 * 4 + i], f32(Math.cos(theta)));
    assert.equal(t.sin[5 * 4 + i], f32(Math.sin(theta)));
  }
});

test("rotary_pct 0.5 turns the first half of the pairs, at 1 / base^(2i / R); the rest stand", () => {
  const t = ropeTable(8, 6, 1e4, 0.5); // R = 4 dims turn: pairs 0 and 1
  for (let p = 0; p < 6; p++) {
    assert.equal(t.cos[p * 4], f32(Math.cos(p)), `position ${p}, pair 0`);
    assert.equal(t.cos[p * 4 + 1], f32(Math.cos(f32(p * f32(1 / f32(1e4 ** 0.5))))));
    for (const i of [2, 3]) {
      assert.equal(t.cos[p * 4 + i], 1, `position ${p}, pair ${i}`);
      assert.equal(t.sin[p * 4 + i], 0, `position ${p}, pair ${i}`);
    }
  }
});

test("rotary_pct 0 turns nothing: the rotation is the identity at every position", () => {
  const t = ropeTable(8, 6, 1e4, 0);
  assert.ok(t.cos.every((c) => c === 1));
  assert.ok(t.sin.every((s) => s === 0));
});
