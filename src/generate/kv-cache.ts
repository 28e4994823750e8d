/**
 * The recurrent-depth KV cache: one slot per (layer, iteration), as the reference's
 * HuginnDynamicCache, for any prelude / core / coda sizes.
 *
 *   prelude layer j            -> slot j
 *   core layer j, iteration t  -> slot nPrelude + nCore·t + j
 *   coda layer c               -> slot -(c + 1)
 *
 * Each slot holds the K/V of the positions that wrote it (a token that exits after m
 * recurrences never writes iterations >= m), sorted by position, in buffers that grow
 * geometrically. Sharing ("compress-sK" of the reference) maps iteration t to t mod K, so K
 * iterations' worth of core slots are reused. Lookup decides what a query reads when some
 * earlier positions lack its slot (they exited earlier).
 *
 * Batches: every entry stores all B rows plus a per-row valid flag. A row that is inactive
 * (it already exited, or it stopped) does not write; left padding (`setPadding`) marks pad
 * positions invalid. Invalid (row, key) pairs come back as a keyMask, so a row of a batch
 * attends to exactly the keys it would see alone. A model whose attention window counts Abacus
 * places passes each chunk's places (B, T); the cache keeps them per (row, position), the same for
 * every slot, and returns the keys' places beside them.
 *
 * Shape letters: B batch, T chunk positions, Tk key positions, C = H·D width.
 */
import type { CachedKV, KVCache } from "../model/layers.ts";

/**
 * What a query reads in a core slot when earlier positions lack it (the reference's names
 * without the "-m4" that hard-codes its 4-block core):
 * - `full`: the positions present in the slot itself (the reference default);
 * - `skip`: the same as `full` for a per-position cache (missing positions are dropped);
 * - `latest`: per position, the deepest same-layer slot at or below the current iteration;
 * - `available`: the own slot when present, else as `latest` (same result, own slot first);
 * - `always-last`: per position, the deepest same-layer slot present, even above the current.
 */
export type LookupStrategy = "full" | "skip" | "latest" | "available" | "always-last";
export const lookupStrategies: readonly LookupStrategy[] = [
  "full",
  "skip",
  "latest",
  "available",
  "always-last",
];

/** Cache sharing: none, or a budget of K iterations reused modulo K (compress-s(K·nCore)). */
export type CacheSharing = { kind: "none" } | { kind: "modulo"; budget: number };

export interface KVCacheOptions {
  batch: number; // B
  width: number; // C = H·D of a K (or V) row
  nPrelude: number;
  nCore: number;
  nCoda: number;
  lookup?: LookupStrategy; // default "full"
  sharing?: CacheSharing; // default none
  capacity?: number; // initial positions per slot (grows ×2)
}

export interface CacheMemory {
  bytes: number; // K and V of all stored entries, float32
  coreBytes: number; // the part held by core (recurrent) slots
  allocatedBytes: number; // buffer capacity actually allocated
  slots: number; // physical slots in use
  entries: number; // stored (slot, position) entries
}

/** One slot: entries sorted by position; K/V (B, cap, C); valid (B, cap). */
class Slot {
  n = 0;
  cap: number;
  pos: Int32Array;
  k: Float32Array;
  v: Float32Array;
  valid: Uint8Array;
  invalid = 0; // number of (row, entry) pairs with valid = 0
  readonly batch: number;
  readonly width: number;

  constructor(batch: number, width: number, cap: number) {
    this.batch = batch;
    this.width = width;
    this.cap = cap;
    this.pos = new Int32Array(cap);
    this.k = new Float32Array(batch * cap * width);
    this.v = new Float32Array(batch * cap * width);
    this.valid = new Uint8Array(batch * cap);
  }

  grow(need: number): void {
    if (need <= this.cap) return;
    let cap = this.cap;
    while (cap < need) cap *= 2;
    const { batch: B, width: C } = this;
    const pos = new Int32Array(cap);
    pos.set(this.pos.subarray(0, this.n));
    const k = new Float32Array(B * cap * C);
    const v = new Float32Array(B * cap * C);
    const valid = new Uint8Array(B * cap);
    for (let b = 0; b < B; b++) {
      k.set(this.k.subarray(b * this.cap * C, (b * this.cap + this.n) * C), b * cap * C);
      v.set(this.v.subarray(b * this.cap * C, (b * this.cap + this.n) * C), b * cap * C);
      valid.set(this.valid.subarray(b * this.cap, b * this.cap + this.n), b * cap);
    }
    Object.assign(this, { cap, pos, k, v, valid });
  }

  /** Entry index of position p, or -(insertion point) - 1. Positions mostly arrive in order. */
  find(p: number): number {
    const { n, pos } = this;
    if (n === 0 || pos[n - 1] < p) return -n - 1;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (pos[mid] === p) return mid;
      if (pos[mid] < p) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  /** Open a fresh (all-invalid) entry for position p at index i, shifting later entries. */
  insert(i: number, p: number): void {
    this.grow(this.n + 1);
    const { batch: B, width: C, cap } = this;
    if (i < this.n) {
      this.pos.copyWithin(i + 1, i, this.n);
      for (let b = 0; b < B; b++) {
        const o = b * cap;
        this.k.copyWithin((o + i + 1) * C, (o + i) * C, (o + this.n) * C);
        this.v.copyWithin((o + i + 1) * C, (o + i) * C, (o + this.n) * C);
        this.valid.copyWithin(o + i + 1, o + i, o + this.n);
      }
    }
    this.pos[i] = p;
    for (let b = 0; b < B; b++) this.valid[b * cap + i] = 0;
    this.invalid += B;
    this.n++;
  }

  /** Drop every entry at a position >= length. */
  truncate(length: number): void {
    let n = this.n;
    while (n > 0 && this.pos[n - 1] >= length) {
      n--;
      for (let b = 0; b < this.batch; b++) if (this.valid[b * this.cap + n] === 0) this.invalid--;
    }
    this.n = n;
  }

  has(b: number, p: number): number {
    const i = this.find(p);
    return i >= 0 && this.valid[b * this.cap + i] !== 0 ? i : -1;
  }
}

export class RecurrentKVCache implements KVCache {
  readonly batch: number;
  readonly width: number;
  readonly lookup: LookupStrategy;
  readonly sharing: CacheSharing;
  private readonly nP: number;
  private readonly nC: number;
  private readonly capacity: number;
  private readonly prelude: Slot[] = [];
  private readonly core: (Slot | undefined)[] = []; // index nCore·(physical iteration) + j
  private readonly coda: Slot[] = [];
  private padRows: Int32Array | null = null; // (B) left pads per row
  private active: Uint8Array | null = null; // (B) rows that write; null = all
  private scratchK = new Float32Array(0);
  private scratchV = new Float32Array(0);
  private scratchMask = new Uint8Array(0);
  private scratchPos = new Int32Array(0);
  private scratchPlaces = new Int32Array(0);
  private placeRows: Int32Array | null = null; // (B, placeCap) place of each row's positions
  private placeCap = 0;
  private maxPos = -1;

  constructor(o: KVCacheOptions) {
    if (o.sharing?.kind === "modulo" && !(o.sharing.budget >= 1)) {
      throw new Error(`KV cache: sharing budget must be >= 1, got ${o.sharing.budget}`);
    }
    this.batch = o.batch;
    this.width = o.width;
    this.lookup = o.lookup ?? "full";
    this.sharing = o.sharing ?? { kind: "none" };
    this.nP = o.nPrelude;
    this.nC = o.nCore;
    this.capacity = Math.max(1, o.capacity ?? 16);
    for (let j = 0; j < o.nPrelude; j++) this.prelude.push(this.newSlot());
    for (let c = 0; c < o.nCoda; c++) this.coda.push(this.newSlot());
  }

  /** Left pads per row: position p of row b is padding when p < pads[b]. */
  setPadding(pads: Int32Array | null): void {
    this.padRows = pads;
  }

  /** Left pads per row, when the batch is padded. */
  get pads(): Int32Array | undefined {
    return this.padRows ?? undefined;
  }

  /** Rows that write from now on (1 = writes); null = every row. */
  setActiveRows(active: Uint8Array | null): void {
    this.active = active;
  }

  /** Number of positions held: 1 + the largest position stored. */
  get length(): number {
    return this.maxPos + 1;
  }

  /** Roll back: drop every position >= length in every slot. */
  truncate(length: number): void {
    for (const s of [...this.prelude, ...this.core, ...this.coda]) s?.truncate(length);
    this.maxPos = Math.min(this.maxPos, length - 1);
  }

  /** Roll back the last n positions (the reference's clear_last_k_entries). */
  clearLast(n: number): void {
    if (n > this.length) throw new Error(`KV cache: cannot clear ${n} of ${this.length} entries`);
    this.truncate(this.length - n);
  }

  /** Iteration t's physical iteration under sharing. */
  physical(t: number): number {
    const s = this.sharing;
    switch (s.kind) {
      case "none":
        return t;
      case "modulo":
        return t % s.budget;
      default:
        return s satisfies never;
    }
  }

  memory(): CacheMemory {
    const perEntry = 2 * this.batch * this.width * 4;
    let bytes = 0;
    let coreBytes = 0;
    let allocatedBytes = 0;
    let slots = 0;
    let entries = 0;
    const all: [Slot | undefined, boolean][] = [
      ...this.prelude.map((s) => [s, false] as [Slot, boolean]),
      ...this.core.map((s) => [s, true] as [Slot | undefined, boolean]),
      ...this.coda.map((s) => [s, false] as [Slot, boolean]),
    ];
    for (const [s, isCore] of all) {
      if (s === undefined || s.n === 0) continue;
      slots++;
      entries += s.n;
      bytes += s.n * perEntry;
      if (isCore) coreBytes += s.n * perEntry;
      allocatedBytes += s.k.byteLength + s.v.byteLength;
    }
    return { bytes, coreBytes, allocatedBytes, slots, entries };
  }

  /**
   * Store k, v (B, T, C) at `positions` (T) in `slot`, with the tokens' `places` (B, T) when
   * the window counts them; return what the chunk attends to.
   */
  update(
    slot: number,
    k: Float32Array,
    v: Float32Array,
    positions: Int32Array,
    places?: Int32Array,
  ): CachedKV {
    const T = positions.length;
    if (places !== undefined) this.storePlaces(positions, places);
    const { slot: s, iter, layer } = this.resolve(slot);
    s.grow(s.n + T);
    for (let i = 0; i < T; i++) this.write(s, positions[i], k, v, i, T);
    for (const p of positions) if (p > this.maxPos) this.maxPos = p;
    const ownOnly = iter < 0 || this.lookup === "full" || this.lookup === "skip";
    return this.withPlaces(ownOnly ? this.read(s) : this.readLookup(s, iter, layer));
  }

  /** Remember the places (B, T) of the tokens at `positions` (T), for every slot. */
  private storePlaces(positions: Int32Array, places: Int32Array): void {
    const B = this.batch;
    const T = positions.length;
    const need = 1 + Math.max(...positions);
    if (this.placeRows === null || need > this.placeCap) {
      const cap = Math.max(need, 2 * this.placeCap, 16);
      const rows = new Int32Array(B * cap);
      for (let b = 0; this.placeRows !== null && b < B; b++) {
        const from = b * this.placeCap;
        rows.set(this.placeRows.subarray(from, from + this.placeCap), b * cap);
      }
      this.placeRows = rows;
      this.placeCap = cap;
    }
    for (let b = 0; b < B; b++) {
      const row = this.placeRows.subarray(b * this.placeCap, (b + 1) * this.placeCap);
      for (let i = 0; i < T; i++) row[positions[i]] = places[b * T + i];
    }
  }

  /** The places (B, n) of the keys at kPos (n), when the chunks brought places. */
  private withPlaces(kv: CachedKV): CachedKV {
    if (this.placeRows === null) return kv;
    const B = this.batch;
    const n = kv.kPos.length;
    if (this.scratchPlaces.length < B * n) this.scratchPlaces = new Int32Array(B * Math.max(n, 16));
    const kPlaces = this.scratchPlaces.subarray(0, B * n);
    for (let b = 0; b < B; b++) {
      const row = this.placeRows.subarray(b * this.placeCap, (b + 1) * this.placeCap);
      for (let i = 0; i < n; i++) kPlaces[b * n + i] = row[kv.kPos[i]];
    }
    return { ...kv, kPlaces };
  }

  private newSlot(): Slot {
    return new Slot(this.batch, this.width, this.capacity);
  }

  /** The physical slot of a logical one; iter/layer are -1 for prelude and coda slots. */
  private resolve(slot: number): { slot: Slot; iter: number; layer: number } {
    if (slot < 0) {
      const s = this.coda[-slot - 1] as Slot | undefined;
      if (s === undefined) throw new Error(`KV cache: no coda slot ${slot}`);
      return { slot: s, iter: -1, layer: -1 };
    }
    if (slot < this.nP) return { slot: this.prelude[slot], iter: -1, layer: -1 };
    const t = Math.floor((slot - this.nP) / this.nC);
    const j = (slot - this.nP) % this.nC;
    const iter = this.physical(t);
    const idx = iter * this.nC + j;
    while (this.core.length <= idx) this.core.push(undefined);
    const s = this.core[idx] ?? this.newSlot();
    this.core[idx] = s;
    return { slot: s, iter, layer: j };
  }

  /** Entry for position p from row-major chunk index i of k, v (B, T, C); active rows only. */
  private write(s: Slot, p: number, k: Float32Array, v: Float32Array, i: number, T: number): void {
    let e = s.find(p);
    if (e < 0) {
      e = -e - 1;
      s.insert(e, p);
    }
    const { batch: B, width: C } = this;
    for (let b = 0; b < B; b++) {
      if (this.active !== null && this.active[b] === 0) continue;
      const dst = (b * s.cap + e) * C;
      const src = (b * T + i) * C;
      s.k.set(k.subarray(src, src + C), dst);
      s.v.set(v.subarray(src, src + C), dst);
      const ok = this.padRows === null || p >= this.padRows[b] ? 1 : 0;
      const vi = b * s.cap + e;
      s.invalid += (ok === 0 ? 1 : 0) - (s.valid[vi] === 0 ? 1 : 0);
      s.valid[vi] = ok;
    }
  }

  /** The slot's own entries: zero-copy views for B = 1, gathered rows otherwise. */
  private read(s: Slot): CachedKV {
    const { batch: B, width: C } = this;
    const n = s.n;
    const kPos = s.pos.subarray(0, n);
    if (B === 1) {
      const kv = { k: s.k.subarray(0, n * C), v: s.v.subarray(0, n * C), tk: n, kPos };
      return s.invalid > 0 ? { ...kv, keyMask: s.valid.subarray(0, n) } : kv;
    }
    this.ensureScratch(n);
    for (let b = 0; b < B; b++) {
      const src = b * s.cap * C;
      this.scratchK.set(s.k.subarray(src, src + n * C), b * n * C);
      this.scratchV.set(s.v.subarray(src, src + n * C), b * n * C);
      this.scratchMask.set(s.valid.subarray(b * s.cap, b * s.cap + n), b * n);
    }
    const kv = {
      k: this.scratchK.subarray(0, B * n * C),
      v: this.scratchV.subarray(0, B * n * C),
      tk: n,
      kPos,
    };
    return s.invalid > 0 ? { ...kv, keyMask: this.scratchMask.subarray(0, B * n) } : kv;
  }

  /** latest / available / always-last: per (row, position), pick a same-layer slot. */
  private readLookup(own: Slot, iter: number, layer: number): CachedKV {
    const same: Slot[] = [];
    for (let t = 0; t * this.nC + layer < this.core.length; t++) {
      same.push(this.core[t * this.nC + layer] ?? EMPTY);
    }
    const universe = unionPositions(same);
    if (own.invalid === 0 && own.n === universe.length) return this.read(own);
    const { batch: B, width: C } = this;
    const n = universe.length;
    this.ensureScratch(n);
    this.scratchPos.set(universe);
    const top = this.lookup === "always-last" ? same.length - 1 : iter;
    let masked = false;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < n; i++) {
        const p = universe[i];
        let from: Slot | null = null;
        let e = own.has(b, p);
        if (e >= 0 && this.lookup !== "always-last") from = own;
        for (let t = top; from === null && t >= 0; t--) {
          e = same[t].has(b, p);
          if (e >= 0) from = same[t];
        }
        const dst = (b * n + i) * C;
        this.scratchMask[b * n + i] = from === null ? 0 : 1;
        if (from === null) {
          masked = true;
          continue;
        }
        const src = (b * from.cap + e) * C;
        this.scratchK.set(from.k.subarray(src, src + C), dst);
        this.scratchV.set(from.v.subarray(src, src + C), dst);
      }
    }
    const kv = {
      k: this.scratchK.subarray(0, B * n * C),
      v: this.scratchV.subarray(0, B * n * C),
      tk: n,
      kPos: this.scratchPos.subarray(0, n),
    };
    return masked ? { ...kv, keyMask: this.scratchMask.subarray(0, B * n) } : kv;
  }

  private ensureScratch(n: number): void {
    const { batch: B, width: C } = this;
    if (this.scratchPos.length >= n) return;
    const cap = Math.max(n, 2 * this.scratchPos.length, 16);
    this.scratchK = new Float32Array(B * cap * C);
    this.scratchV = new Float32Array(B * cap * C);
    this.scratchMask = new Uint8Array(B * cap);
    this.scratchPos = new Int32Array(cap);
  }
}

const EMPTY = new Slot(0, 0, 1);

/** Sorted union of the positions held by some slots. */
function unionPositions(slots: readonly Slot[]): Int32Array {
  const seen = new Set<number>();
  for (const s of slots) for (let i = 0; i < s.n; i++) seen.add(s.pos[i]);
  return Int32Array.from([...seen].sort((a, b) => a - b));
}

/** A cache shaped for a model config. */
export function cacheFor(
  config: {
    nEmbd: number;
    nLayersInPrelude: number;
    nLayersInRecurrentBlock: number;
    nLayersInCoda: number;
  },
  batch: number,
  o: { lookup?: LookupStrategy; sharing?: CacheSharing; capacity?: number } = {},
): RecurrentKVCache {
  return new RecurrentKVCache({
    batch,
    width: config.nEmbd,
    nPrelude: config.nLayersInPrelude,
    nCore: config.nLayersInRecurrentBlock,
    nCoda: config.nLayersInCoda,
    ...o,
  });
}
