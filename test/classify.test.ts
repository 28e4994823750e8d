// The trajectory classifier on synthetic trajectories of each kind, with known answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyTrajectory } from "../src/analysis/classify.ts";
import { convergenceStep } from "../src/analysis/metrics.ts";
import { Rng } from "../src/tensor/random.ts";

const C = 16;
const N = 16;
const rng = new Rng(11);
const randVec = (s = 1): Float64Array => Float64Array.from({ length: C }, () => s * rng.normal());
const unit = (v: Float64Array): Float64Array => v.map((x) => x / Math.hypot(...v));
/** Two orthonormal directions u, w. */
function plane(): [Float64Array, Float64Array] {
  const u = unit(randVec());
  const w = randVec();
  const d = u.reduce((a, x, i) => a + x * w[i], 0);
  return [u, unit(w.map((x, i) => x - d * u[i]))];
}
const centre = randVec(3); // ‖centre‖ ≈ 12
const at = (f: (c: number) => number): Float64Array =>
  Float64Array.from({ length: C }, (_, c) => f(c));
const noise =
  (s: number) =>
  (z: Float64Array): Float64Array =>
    z.map((x) => x + s * rng.normal());

test("fixed point: geometric approach z* + 0.5^i v", () => {
  const v = randVec();
  const pts = Array.from({ length: N }, (_, i) => at((c) => centre[c] + 0.5 ** (i + 1) * v[c]));
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "fixed-point");
});

test("orbit with exact period 3 (a cycle of three points, small noise)", () => {
  const cyc = [randVec(), randVec(), randVec()].map((d) => at((c) => centre[c] + d[c]));
  const pts = Array.from({ length: N }, (_, i) => noise(0.01)(cyc[i % 3]));
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "orbit");
  assert.equal(r.period, 3);
});

test("orbit: rotation by 2π/5 per step in a plane has period 5", () => {
  const [u, w] = plane();
  const th = (2 * Math.PI) / 5;
  const pts = Array.from({ length: N }, (_, i) =>
    at((c) => centre[c] + 2 * (Math.cos(th * i) * u[c] + Math.sin(th * i) * w[c])),
  );
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "orbit");
  assert.equal(r.period, 5);
});

test("orbit: rotation with a non-integer period 6.5 is found from the steady turn", () => {
  const [u, w] = plane();
  const th = (2 * Math.PI) / 6.5;
  const pts = Array.from({ length: 24 }, (_, i) =>
    at((c) => centre[c] + 2 * (Math.cos(th * i) * u[c] + Math.sin(th * i) * w[c])),
  );
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "orbit");
  assert.ok(Math.abs((r.period ?? 0) - 6.5) < 0.05, `period ${r.period}`);
});

test("slider: steady drift along a direction, with direction and speed", () => {
  const d = unit(randVec());
  const speed = 0.5;
  const pts = Array.from({ length: N }, (_, i) =>
    noise(0.005)(at((c) => centre[c] + speed * i * d[c])),
  );
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "slider");
  assert.ok(Math.abs((r.speed ?? 0) - speed) < 0.02, `speed ${r.speed}`);
  const cos = (r.direction ?? new Float64Array(C)).reduce((a, x, i) => a + x * d[i], 0);
  assert.ok(cos > 0.999, `direction cos ${cos}`);
  assert.ok((r.relativeSpeed ?? 0) > 0.01);
});

test("unconverged: a random walk", () => {
  let z = centre;
  const pts = Array.from({ length: N }, () => (z = z.map((x) => x + 0.5 * rng.normal())));
  assert.equal(classifyTrajectory(pts).class, "unconverged");
});

test("unconverged: a slowing but still-moving approach is neither fixed nor a slider", () => {
  // speed halves every 2 steps: not steady, and still above ε at the end
  const v = randVec(40);
  const pts = Array.from({ length: N }, (_, i) => at((c) => centre[c] + 0.7 ** i * v[c]));
  const r = classifyTrajectory(pts);
  assert.equal(r.class, "unconverged");
});

test("convergenceStep: first step from which the relative step stays below ε", () => {
  assert.equal(convergenceStep([0.5, 0.2, 0.005, 0.02, 0.004, 0.001], 0.01), 5);
  assert.equal(convergenceStep([0.001, 0.001], 0.01), 1);
  assert.equal(convergenceStep([0.5, 0.2], 0.01), null);
});
