import type { Rng } from "../../tensor/random.ts";
import { interleave, randomLetters, range, type TaskSpec } from "./spec.ts";

/**
 * Directed-graph reachability (ProsQA-style), `"a:h/d?ab,ef,bc,fg,gc,cd,gh;a?"` → `"d"`.
 *
 * The graph is two disjoint chains of h edges over 2h + 2 distinct letters, plus ⌊h/2⌋ cross
 * edges from a node of the other chain into the source's chain (`gc`: c is reachable from g, g
 * not from a). They leave the other chain before its last node and enter the source's chain
 * between its ends: no edge enters the source, each choice is entered once and left never.
 * `xy` is the edge x → y. Like ProsQA's, the graph is acyclic. The question `s:x/y?` asks
 * which of x and y is reachable from s (ProsQA's "Is Tom a wumpus or a brimpus?"), where s
 * heads one chain and x, y are the last nodes of the two chains, the reachable one first at
 * even ordinals (exactly balanced at each difficulty). The prompt closes with the source alone,
 * `s?`, just before the answer.
 *
 * Difficulty: h, the shortest-path length from s to the reachable one (h ≤ 12).
 * Answer: that letter. Prompt length 3(2h + ⌊h/2⌋) + 8.
 *
 * Layout: the question comes first; each chain's edges are written in path order and the two
 * chains interleaved at random, the cross edges anywhere. A causal model then reads every
 * forward edge after the one that reaches its tail, so "reached from s" can flow forward one
 * edge per iteration, and a scan that keeps one letter (the last node reached: an edge from it
 * moves it on) answers, as pointer-chasing's does.
 *
 * Training: a level (edge of the path) adds 8 characters, so the trainer's rule for long levels
 * (src/train/window.ts) gives pointer-chasing's settings, two iterations per edge and a window
 * of 7. Trained 30 minutes, 1-4 edges go from 59-70% at r = 1 to 98-99% at r = 16 and 8 edges
 * to 70-87.5% at three of four seeds; the fourth learns two edges (RB0-RB3,
 * bench/recipe-notes.md, session 11).
 *
 * What did not work (bench/recipe-notes.md, sessions 4-10): all edges shuffled (one answer for
 * all, R30); a yes/no question "is t reachable from s?" (chance even at one edge); back edges
 * in place of the cross edges, which make cycles (one edge at most, RQDEF); and, with every
 * graph, closing the prompt with the whole question `s:x/y?` (one edge at most, RF, RF2W7).
 * With the two choices in the window at the answer, the model settles on picking one of them
 * and the scan is never found; with `s?` there the same graph learns 1-8 edges (QL7, RB0).
 */
export const reachability: TaskSpec = {
  minDifficulty: 1,
  maxDifficulty: 12,
  trainDifficulties: range(1, 4),
  sample(rng, hops, ordinal) {
    const nodes = randomLetters(rng, 2 * (hops + 1));
    const source = nodes.slice(0, hops + 1);
    const other = nodes.slice(hops + 1);
    const edges = interleave(rng, chainEdges(source), chainEdges(other));
    const inner = source.slice(1, hops); // between the source's ends
    const cross = crossEdges(rng, other.slice(0, hops), inner, Math.floor(hops / 2));
    for (const edge of cross) edges.splice(rng.int(edges.length + 1), 0, edge);
    const reachable = source[hops];
    const unreachable = other[hops];
    const choices =
      ordinal % 2 === 0 ? `${reachable}/${unreachable}` : `${unreachable}/${reachable}`;
    const question = `${source[0]}:${choices}?`;
    return { prompt: `${question}${edges.join(",")};${source[0]}?`, answer: reachable };
  },
};

function chainEdges(chain: readonly string[]): string[] {
  return chain.slice(1).map((node, i) => chain[i] + node);
}

/** `count` distinct edges from a random node of `from` to a random node of `to`. */
function crossEdges(
  rng: Rng,
  from: readonly string[],
  to: readonly string[],
  count: number,
): string[] {
  const edges = new Set<string>();
  while (edges.size < count) edges.add(from[rng.int(from.length)] + to[rng.int(to.length)]);
  return [...edges];
}
