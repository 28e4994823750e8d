/**
 * Train/test partition of each task's instance space by a hash of the prompt: an instance is in
 * the test split iff hashString(prompt) mod TEST_BUCKETS is 0, so the two splits never share a
 * prompt whatever the seeds and counts, and a quarter of every difficulty's instances is held out.
 */

export type Split = "train" | "test";

const TEST_BUCKETS = 4;

/** The split a prompt belongs to. */
export function splitOf(prompt: string): Split {
  return hashString(prompt) % TEST_BUCKETS === 0 ? "test" : "train";
}

/**
 * 32-bit FNV-1a over the UTF-16 units of `text`, then murmur3's finalizer. The finalizer matters:
 * FNV-1a's low bits depend only on the low bits of each unit, so without it the partition of bit
 * strings would follow their parity.
 */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
