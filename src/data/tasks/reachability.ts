import type { Rng } from "../../tensor/random.ts";
import { interleave, randomLetters, range, type TaskSpec } from "./spec.ts";

/**
 * Directed-graph reachability (ProsQA-style), `"a:h/d?ab,ef,bc,fg,gc,cd,gh;a:h/d?"` → `"d"`.
 *
 * The graph is two disjoint chains of h edges over 2h + 2 distinct letters, plus ⌊h/2⌋ cross
 * edges from a node of the other chain into the source's chain (`gc`: c is reachable from g, g
 * not from a). They leave the other chain before its last node and enter the source's chain
 * between its ends: no edge enters the source, each choice is entered once and left never.
 * `xy` is the edge x → y. Like ProsQA's, the graph is acyclic. The question `s:x/y?` asks
 * which of x and y is reachable from s (ProsQA's "Is Tom a wumpus or a brimpus?"), where s
 * heads one chain and x, y are the last nodes of the two chains, the reachable one first at
 * even ordinals (exactly balanced at each difficulty).
 *
 * Difficulty: h, the shortest-path length from s to the reachable one (h ≤ 12).
 * Answer: that letter. Prompt length 3(2h + ⌊h/2⌋) + 12.
 *
 * Layout: the question comes first and again last; each chain's edges are written in path order
 * and the two chains interleaved at random, the cross edges anywhere. A causal model then reads
 * every forward edge after the one that reaches its tail, so "reached from s" can flow forward
 * one edge per iteration, and a scan that keeps one letter (the last node reached: an edge
 * from it moves it on) answers. With all edges shuffled, a looped model answers one word for 30
 * minutes (bench/recipe-notes.md, R30). Asked "is t reachable from s?" with a yes/no answer
 * instead of a choice, every run stayed at chance even at one edge (R30, RG30, RW4, RC3, RW13,
 * RC2W7): no single letter-match moves the answer, so the gradient has nothing to start from,
 * where a choice between two named nodes makes it a retrieval, as pointer-chasing's digit.
 * With back edges (later to earlier node of a chain) in place of the cross edges, the choice
 * was learned at one edge in 30 minutes but not at more (RQDEF): a back edge from the last node
 * reached leads the one-letter scan astray. The acyclic graph fares no better so far: one edge
 * at best in 30 minutes, with the defaults or pointer-chasing's settings at three seeds (RF,
 * RF2W7, RF2W7S1/S2), no sooner without the cross edges (NCW7C2) or written like
 * pointer-chasing, `x>y` edges and s next to the answer (FW7, FW9).
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
    return { prompt: `${question}${edges.join(",")};${question}`, answer: reachable };
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
