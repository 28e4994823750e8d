import type { Rng } from "../../tensor/random.ts";
import { interleave, randomLetters, range, type TaskSpec } from "./spec.ts";

/**
 * Directed-graph reachability (ProsQA-style), `"a:h/d?ab,ef,bc,fg,cb,gf,cd,gh;a:h/d?"` → `"d"`.
 *
 * The graph is two disjoint chains of h edges over 2h + 2 distinct letters, plus ⌈h/2⌉ back
 * edges (from a later to an earlier node of the same chain); `xy` is the edge x → y. The
 * question `s:x/y?` asks which of x and y is reachable from s (ProsQA's "Is Tom a wumpus or a
 * brimpus?"), where s heads one chain and x, y are the last nodes of the two chains, the
 * reachable one first at even ordinals (exactly balanced at each difficulty).
 *
 * Difficulty: h, the shortest-path length from s to the reachable one (h ≤ 12).
 * Answer: that letter. Prompt length 3(2h + ⌈h/2⌉) + 12.
 *
 * Layout: the question comes first and again last; each chain's edges are written in path order
 * and the two chains interleaved at random, the back edges anywhere. A causal model then reads
 * every forward edge after the one that reaches its tail, so "reached from s" can flow forward
 * one edge per iteration. With all edges shuffled, a looped model answers one word for 30
 * minutes (bench/recipe-notes.md, R30). Asked "is t reachable from s?" with a yes/no answer
 * instead of a choice, every run stayed at chance even at one edge (R30, RG30, RW4, RC3, RW13,
 * RC2W7): no single letter-match moves the answer, so the gradient has nothing to start from,
 * where a choice between two named nodes makes it a retrieval, as pointer-chasing's digit. As
 * a choice, the defaults learn one edge in 30 minutes but not longer paths (RQDEF).
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
    for (const edge of backEdges(rng, [source, other], Math.ceil(hops / 2))) {
      edges.splice(rng.int(edges.length + 1), 0, edge);
    }
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

/** `count` distinct edges from a later to an earlier node of a randomly chosen chain. */
function backEdges(rng: Rng, chains: readonly (readonly string[])[], count: number): string[] {
  const edges = new Set<string>();
  while (edges.size < count) {
    const chain = chains[rng.int(chains.length)];
    const from = 1 + rng.int(chain.length - 1);
    edges.add(chain[from] + chain[rng.int(from)]);
  }
  return [...edges];
}
