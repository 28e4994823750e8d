import type { Rng } from "../tensor/random.ts";

/** Fisher-Yates shuffle of `items` in place, driven by `rng`; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
