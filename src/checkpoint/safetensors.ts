/**
 * safetensors, read and written without any I/O (works in the browser as well as in Node).
 *
 * Layout: u64 little-endian header length N | N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {key: string}}` | data,
 * offsets relative to the start of the data. Every header field is validated before any tensor
 * byte is touched or any buffer is sized from it, so a corrupt or hostile file gives a
 * `SafetensorsError` naming the file and the tensor instead of a crash or an out-of-memory.
 *
 * Reading is split so a large checkpoint never needs one giant buffer: `readHeaderLength` on the
 * first 8 bytes, `parseHeader` on the first 8 + N bytes, then `decodeFloat32`/`decodeInt` on each
 * tensor's own bytes (the Node adapter reads those at their file offsets). Writing is split the
 * same way: `planSafetensors` gives the header, `encodeTensor` each tensor's bytes in order.
 */

/** Element types loom reads. Floats decode to Float32Array, integers and BOOL to Int32Array. */
export type Dtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Element types loom writes: floats from a Float32Array, integers from an Int32Array. */
export type WriteDtype = "F32" | "BF16" | "I64" | "I32";

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A malformed safetensors file or an invalid tensor to write; the message names file and tensor. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** One validated header entry. `begin`/`end` are byte offsets relative to the data start. */
export interface TensorEntry {
  fileName: string;
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** A validated header: tensors in header order, data start = 8 + header length. */
export interface SafetensorsHeader {
  fileName: string;
  dataStart: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/** A tensor whose values are decoded on demand. */
export interface TensorSource {
  dtype: Dtype;
  shape: number[];
  /** Values of a float tensor (F32, F16, BF16, F64) as float32. */
  float32(): Float32Array;
  /** Values of an integer or BOOL tensor as int32 (I64 range-checked). */
  int32(): Int32Array;
}

/** A tensor to write. F32/BF16 (default F32) take a Float32Array, I64/I32 an Int32Array. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array | Int32Array;
  dtype?: WriteDtype;
}

/** Header and data layout of a file about to be written; tensors are in data order. */
export interface SafetensorsPlan {
  /** The 8-byte length followed by the space-padded JSON header. */
  header: Uint8Array;
  tensors: TensorToWrite[];
  /** Total file size in bytes. */
  byteLength: number;
}

// ---------------------------------------------------------------------------------------------
// Reading the header

/**
 * Validates the u64 header length in the first 8 bytes of a file of `fileLength` bytes and
 * returns it; the caller then needs the first 8 + length bytes for `parseHeader`.
 */
export function readHeaderLength(prefix: Uint8Array, fileLength: number, fileName: string): number {
  if (fileLength < 8 || prefix.length < 8) {
    const have = Math.min(fileLength, prefix.length);
    throw new SafetensorsError(
      `${fileName}: ${have} bytes, too short for the 8-byte header length`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length < 2n) {
    throw new SafetensorsError(`${fileName}: header length ${length} is too small (at least 2)`);
  }
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `${fileName}: header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }
  if (length > BigInt(fileLength - 8)) {
    throw new SafetensorsError(
      `${fileName}: header length ${length} runs past the end of the ${fileLength}-byte file`,
    );
  }
  return Number(length);
}

/**
 * Parses and fully validates the header. `prefix` holds at least the first 8 + N bytes of a file
 * of `fileLength` bytes. Checks dtypes, shapes, that every tensor's bytes lie inside the data area
 * and match its shape, that no two tensors overlap, and that metadata values are strings.
 */
export function parseHeader(
  prefix: Uint8Array,
  fileLength: number,
  fileName: string,
): SafetensorsHeader {
  const headerLength = readHeaderLength(prefix, fileLength, fileName);
  const dataStart = 8 + headerLength;
  if (prefix.length < dataStart) {
    throw new SafetensorsError(
      `${fileName}: given ${prefix.length} bytes but the header needs the first ${dataStart}`,
    );
  }
  const json = parseHeaderJson(prefix.subarray(8, dataStart), fileName);
  const dataLength = fileLength - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(value, fileName);
    else tensors.set(name, parseEntry(name, value, dataLength, fileName));
  }
  checkNoOverlap([...tensors.values()], fileName);
  return { fileName, dataStart, tensors, metadata };
}

function parseHeaderJson(bytes: Uint8Array, fileName: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${fileName}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${fileName}: header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) {
    throw new SafetensorsError(`${fileName}: header is ${describe(json)}, expected a JSON object`);
  }
  return json;
}

function parseMetadata(value: unknown, fileName: string): Record<string, string> {
  if (!isPlainObject(value)) {
    throw new SafetensorsError(
      `${fileName}: __metadata__ is ${describe(value)}, expected an object`,
    );
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        `${fileName}: __metadata__ "${key}" is ${describe(v)}, expected a string`,
      );
    }
  }
  return Object.fromEntries(Object.entries(value)) as Record<string, string>;
}

function parseEntry(
  name: string,
  value: unknown,
  dataLength: number,
  fileName: string,
): TensorEntry {
  const fail = (msg: string) => new SafetensorsError(`${fileName}: tensor "${name}": ${msg}`);
  if (!isPlainObject(value)) throw fail(`entry is ${describe(value)}, expected an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    const known = Object.keys(DTYPE_BYTES).join(", ");
    throw fail(`unknown dtype ${show(dtype)} (known: ${known})`);
  }
  if (!isIntArray(shape)) {
    throw fail(`shape ${show(shape)} is not an array of integers >= 0`);
  }
  if (!isIntArray(offsets) || offsets.length !== 2) {
    throw fail(`data_offsets ${show(offsets)} is not [begin, end]`);
  }
  const [begin, end] = offsets;
  if (begin > end || end > dataLength) {
    throw fail(`data_offsets [${begin}, ${end}] outside the ${dataLength}-byte data area`);
  }
  const known = dtype as Dtype;
  const needed = product(shape) * DTYPE_BYTES[known];
  if (end - begin !== needed) {
    throw fail(
      `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ` +
        `[${shape.join(", ")}] of ${known} needs ${needed}`,
    );
  }
  return { fileName, name, dtype: known, shape: [...shape], begin, end };
}

function checkNoOverlap(entries: TensorEntry[], fileName: string): void {
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.begin < prev.end) {
      throw new SafetensorsError(
        `${fileName}: tensor "${cur.name}": data_offsets [${cur.begin}, ${cur.end}] overlap ` +
          `tensor "${prev.name}" [${prev.begin}, ${prev.end}]`,
      );
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** A header value for a message: its JSON, or "missing". */
function show(v: unknown): string {
  return v === undefined ? "missing" : JSON.stringify(v);
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// Decoding tensor bytes

/**
 * Values of a float tensor as float32 from exactly its bytes (`entry.end - entry.begin` long).
 * F32 is returned as a view of `bytes` when they are 4-aligned on a little-endian host (no copy;
 * it shares memory with `bytes`), else copied. F16 and BF16 convert exactly; F64 rounds to
 * nearest.
 */
export function decodeFloat32(entry: TensorEntry, bytes: Uint8Array): Float32Array {
  const view = checkedView(entry, bytes);
  const n = bytes.length / DTYPE_BYTES[entry.dtype];
  switch (entry.dtype) {
    case "F32":
      return decodeF32(bytes, view, n);
    case "F16":
      return mapToFloat32(n, (i) => halfToFloat(view.getUint16(2 * i, true)));
    case "BF16":
      return decodeBf16(view, n);
    case "F64":
      return mapToFloat32(n, (i) => view.getFloat64(8 * i, true));
    case "I64":
    case "I32":
    case "I16":
    case "I8":
    case "U8":
    case "BOOL":
      throw decodeError(entry, `dtype ${entry.dtype} is not a float type (read it as int32)`);
  }
}

/**
 * Values of an integer or BOOL tensor as int32 from exactly its bytes. I64 values outside the
 * int32 range are an error naming the tensor and the index.
 */
export function decodeInt(entry: TensorEntry, bytes: Uint8Array): Int32Array {
  const view = checkedView(entry, bytes);
  const n = bytes.length / DTYPE_BYTES[entry.dtype];
  switch (entry.dtype) {
    case "I64":
      return decodeI64(entry, view, n);
    case "I32":
      return mapToInt32(n, (i) => view.getInt32(4 * i, true));
    case "I16":
      return mapToInt32(n, (i) => view.getInt16(2 * i, true));
    case "I8":
      return mapToInt32(n, (i) => view.getInt8(i));
    case "U8":
    case "BOOL":
      return Int32Array.from(bytes);
    case "F64":
    case "F32":
    case "F16":
    case "BF16":
      throw decodeError(entry, `dtype ${entry.dtype} is not an integer type (read it as float32)`);
  }
}

function checkedView(entry: TensorEntry, bytes: Uint8Array): DataView {
  const expected = entry.end - entry.begin;
  if (bytes.length !== expected) {
    throw decodeError(entry, `given ${bytes.length} bytes, expected ${expected}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodeError(entry: TensorEntry, msg: string): SafetensorsError {
  return new SafetensorsError(`${entry.fileName}: tensor "${entry.name}": ${msg}`);
}

function decodeF32(bytes: Uint8Array, view: DataView, n: number): Float32Array {
  if (!HOST_LITTLE_ENDIAN) return mapToFloat32(n, (i) => view.getFloat32(4 * i, true));
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, n);
}

function decodeBf16(view: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  return out;
}

function decodeI64(entry: TensorEntry, view: DataView, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const lo = view.getInt32(8 * i, true);
    const hi = view.getInt32(8 * i + 4, true);
    if (hi !== lo >> 31) {
      const value = view.getBigInt64(8 * i, true);
      throw decodeError(entry, `I64 value ${value} at index ${i} does not fit in int32`);
    }
    out[i] = lo;
  }
  return out;
}

function mapToFloat32(n: number, f: (i: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

function mapToInt32(n: number, f: (i: number) => number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(i);
  return out;
}

/** IEEE binary16 bits to their exact value. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// ---------------------------------------------------------------------------------------------
// Whole in-memory files

/**
 * Parses a whole in-memory file. Each tensor's `float32()`/`int32()` decodes a fresh copy of its
 * values (the result never shares memory with `bytes`).
 */
export function parseSafetensors(bytes: Uint8Array, fileName: string): Map<string, TensorSource> {
  const header = parseHeader(bytes, bytes.length, fileName);
  const out = new Map<string, TensorSource>();
  for (const [name, entry] of header.tensors) {
    const raw = () => bytes.slice(header.dataStart + entry.begin, header.dataStart + entry.end);
    out.set(name, {
      dtype: entry.dtype,
      shape: [...entry.shape],
      float32: () => decodeFloat32(entry, raw()),
      int32: () => decodeInt(entry, raw()),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Validates the tensors and lays out a file: names sorted, data contiguous in that order, the
 * JSON header padded with spaces to a multiple of 8 bytes. `metadata` goes to `__metadata__`.
 */
export function planSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): SafetensorsPlan {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const fields: string[] = [];
  if (metadata !== undefined) fields.push(`"__metadata__":${metadataJson(metadata)}`);
  let offset = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (i > 0 && sorted[i - 1].name === t.name) throw writeError(t, "duplicate tensor name");
    const dtype = checkWritable(t);
    const end = offset + t.data.length * DTYPE_BYTES[dtype];
    const entry = { dtype, shape: t.shape, data_offsets: [offset, end] };
    fields.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${fields.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES} limit`);
  }
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, tensors: sorted, byteLength: header.length + offset };
}

/** A tensor's little-endian bytes in its (validated) write dtype. */
export function encodeTensor(t: TensorToWrite): Uint8Array {
  const dtype = checkWritable(t);
  const out = new Uint8Array(t.data.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  const data = t.data;
  const n = data.length;
  switch (dtype) {
    case "F32":
      if (HOST_LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, 4 * n));
      else for (let i = 0; i < n; i++) view.setFloat32(4 * i, data[i], true);
      break;
    case "BF16":
      for (let i = 0; i < n; i++) view.setUint16(2 * i, float32ToBf16(data[i]), true);
      break;
    case "I32":
      for (let i = 0; i < n; i++) view.setInt32(4 * i, data[i], true);
      break;
    case "I64":
      for (let i = 0; i < n; i++) {
        view.setInt32(8 * i, data[i], true);
        view.setInt32(8 * i + 4, data[i] >> 31, true); // sign extension
      }
      break;
  }
  return out;
}

/** The whole file in one buffer (fine for small files; the Node writer streams per tensor). */
export function serializeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Uint8Array {
  const plan = planSafetensors(tensors, metadata);
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.header);
  let offset = plan.header.length;
  for (const t of plan.tensors) {
    const bytes = encodeTensor(t);
    out.set(bytes, offset);
    offset += bytes.length;
  }
  return out;
}

const F32_SCRATCH = new Float32Array(1);
const F32_SCRATCH_BITS = new Uint32Array(F32_SCRATCH.buffer);

/**
 * Rounds `x` (first rounded to float32) to bfloat16 bits, round-to-nearest-even; overflow gives
 * infinity, NaN stays a (quiet) NaN.
 */
export function float32ToBf16(x: number): number {
  F32_SCRATCH[0] = x;
  const u = F32_SCRATCH_BITS[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

function checkWritable(t: TensorToWrite): WriteDtype {
  const dtype = t.dtype ?? "F32";
  const wantsFloat = dtype === "F32" || dtype === "BF16";
  if (wantsFloat !== t.data instanceof Float32Array) {
    const array = wantsFloat ? "Float32Array" : "Int32Array";
    throw writeError(t, `dtype ${dtype} is written from a ${array}`);
  }
  if (!isIntArray(t.shape)) {
    throw writeError(t, `shape ${JSON.stringify(t.shape)} is not an array of integers >= 0`);
  }
  if (product(t.shape) !== t.data.length) {
    throw writeError(
      t,
      `shape [${t.shape.join(", ")}] needs ${product(t.shape)} values, got ${t.data.length}`,
    );
  }
  if (t.name === "__metadata__") throw writeError(t, "reserved name");
  return dtype;
}

function writeError(t: TensorToWrite, msg: string): SafetensorsError {
  return new SafetensorsError(`tensor "${t.name}": ${msg}`);
}

function metadataJson(metadata: Record<string, string>): string {
  const fields = Object.entries(metadata as Record<string, unknown>).map(([k, v]) => {
    if (typeof v !== "string") {
      throw new SafetensorsError(`__metadata__ "${k}" is ${describe(v)}, expected a string`);
    }
    return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
  });
  return `{${fields.join(",")}}`;
}
