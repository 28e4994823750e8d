/**
 * Hugging Face model directories and single safetensors files on disk (Node only).
 *
 * A model directory holds `config.json` and either `model.safetensors` or shards
 * `model-00001-of-0000N.safetensors` listed in `model.safetensors.index.json`
 * (`{"metadata": {...}, "weight_map": {tensor: shard}}`); other files (tokenizer.json, ...) may
 * sit beside them.
 *
 * Reading never holds a whole file in memory: each file's header is read and validated against
 * the real file size, then every tensor's bytes are read at their offset through a file
 * descriptor, lazily, when its `float32()`/`int32()` is called.
 *
 * Writing is atomic per file and never leaves a truncated file:
 * - a single file is written to `<path>.tmp-<pid>-<rand>`, fsynced, and renamed over `<path>`;
 * - a new directory is written completely as `<dir>.tmp-<pid>-<rand>` and renamed to `<dir>`;
 * - an existing directory is updated file by file: the new files are written in a temp directory
 *   beside it, then renamed in (shards, then the index or model.safetensors, then extra files,
 *   then config.json), and only then are the weight files of the old layout removed. A reader
 *   sees the old or the new version of each file; a crash in the middle can leave new weights
 *   beside an old config.json, but never a half-written file. Files loom does not write (e.g. a
 *   README) are kept.
 * Temp files are removed on failure.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import {
  decodeFloat32,
  DTYPE_BYTES,
  decodeInt,
  parseHeader,
  planSafetensors,
  encodeTensor,
  readHeaderLength,
  type SafetensorsHeader,
  type TensorEntry,
  type TensorSource,
  type TensorToWrite,
} from "../checkpoint/safetensors.ts";

/** A missing or inconsistent file in a model directory; the message names it. */
export class ModelDirError extends Error {
  override name = "ModelDirError";
}

/** A tensor stored in a file on disk; values are read from `file` on each call. */
export interface StoredTensor extends TensorSource {
  file: string;
}

/** A safetensors file opened for reading: header metadata and lazily read tensors. */
export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, StoredTensor>;
}

/** A model directory read back. `files` are the paths of the safetensors files used. */
export interface ModelDir {
  config: Record<string, unknown>;
  tensors: Map<string, StoredTensor>;
  files: string[];
}

/** Options of `writeModelDir`. */
export interface WriteModelDirOptions {
  /** Start a new shard when the next tensor would pass this many data bytes (default 5e9). */
  maxShardBytes?: number;
  /** More files to write beside the weights, by file name (e.g. `tokenizer.json`). */
  extraFiles?: Record<string, string | Uint8Array>;
  /** `__metadata__` of every safetensors file (default `{format: "pt"}`, as transformers wants). */
  metadata?: Record<string, string>;
}

const CONFIG = "config.json";
const SINGLE = "model.safetensors";
const INDEX = "model.safetensors.index.json";
const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;
const DEFAULT_MAX_SHARD_BYTES = 5e9;
const READ_CHUNK = 1 << 30; // readSync/writeSync move at most ~2 GiB per call

// ---------------------------------------------------------------------------------------------
// Reading

/** Opens a safetensors file: reads and validates its header; tensor values are read lazily. */
export function readSafetensorsFile(path: string): SafetensorsFile {
  const header = readHeaderFile(path);
  const tensors = new Map<string, StoredTensor>();
  for (const [name, entry] of header.tensors) tensors.set(name, storedTensor(path, header, entry));
  return { metadata: header.metadata, tensors };
}

/**
 * Reads a model directory: `config.json` plus `model.safetensors` or the shards named by
 * `model.safetensors.index.json`. Headers are validated now; tensor values are read on demand.
 */
export function readModelDir(dir: string): ModelDir {
  if (!isDirectory(dir)) throw new ModelDirError(`${dir}: not a directory`);
  const config = readJsonObject(join(dir, CONFIG));
  if (existsSync(join(dir, SINGLE))) {
    const path = join(dir, SINGLE);
    return { config, tensors: readSafetensorsFile(path).tensors, files: [path] };
  }
  if (existsSync(join(dir, INDEX))) return { config, ...readShards(dir) };
  throw new ModelDirError(`${dir}: neither ${SINGLE} nor ${INDEX} found`);
}

function readShards(dir: string): { tensors: Map<string, StoredTensor>; files: string[] } {
  const indexPath = join(dir, INDEX);
  const weightMap = readWeightMap(indexPath);
  const shards = [...new Set(weightMap.values())].sort();
  const tensors = new Map<string, StoredTensor>();
  for (const shard of shards) {
    const path = join(dir, shard);
    if (!existsSync(path)) {
      const tensor = [...weightMap].find(([, s]) => s === shard)?.[0] ?? "";
      throw new ModelDirError(`${indexPath}: shard ${shard} (of tensor "${tensor}") not found`);
    }
    for (const [name, t] of readSafetensorsFile(path).tensors) {
      const other = tensors.get(name);
      if (other !== undefined) {
        throw new ModelDirError(
          `${indexPath}: tensor "${name}" is in both ${other.file} and ${path}`,
        );
      }
      tensors.set(name, t);
    }
  }
  for (const [name, shard] of weightMap) {
    if (tensors.get(name)?.file !== join(dir, shard)) {
      throw new ModelDirError(`${indexPath}: tensor "${name}" is not in its shard ${shard}`);
    }
  }
  return { tensors, files: shards.map((s) => join(dir, s)) };
}

function readWeightMap(indexPath: string): Map<string, string> {
  const index = readJsonObject(indexPath);
  const weightMap = index.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelDirError(`${indexPath}: "weight_map" is missing or not an object`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || !isPlainFileName(shard)) {
      throw new ModelDirError(
        `${indexPath}: tensor "${name}": shard ${JSON.stringify(shard)} is not a file name`,
      );
    }
    out.set(name, shard);
  }
  return out;
}

function readJsonObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ModelDirError(`${path}: cannot read (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelDirError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelDirError(`${path}: expected a JSON object`);
  }
  return json as Record<string, unknown>;
}

/** Reads the 8-byte length, then the header, and validates it against the file's real size. */
function readHeaderFile(path: string): SafetensorsHeader {
  return withFd(path, "r", (fd) => {
    const size = fstatSync(fd).size;
    const lengthBytes = readAt(fd, path, 0, Math.min(8, size));
    const length = readHeaderLength(lengthBytes, size, path);
    const prefix = new Uint8Array(8 + length);
    prefix.set(lengthBytes);
    prefix.set(readAt(fd, path, 8, length), 8);
    return parseHeader(prefix, size, path);
  });
}

function storedTensor(path: string, header: SafetensorsHeader, entry: TensorEntry): StoredTensor {
  const raw = () =>
    withFd(path, "r", (fd) =>
      readAt(fd, path, header.dataStart + entry.begin, entry.end - entry.begin),
    );
  return {
    file: path,
    dtype: entry.dtype,
    shape: [...entry.shape],
    float32: () => decodeFloat32(entry, raw()),
    int32: () => decodeInt(entry, raw()),
  };
}

/** Reads exactly `length` bytes at `position` into a fresh (aligned) buffer. */
function readAt(fd: number, path: string, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(READ_CHUNK, length - done), position + done);
    if (n === 0) {
      throw new ModelDirError(`${path}: unexpected end of file at byte ${position + done}`);
    }
    done += n;
  }
  return out;
}

function withFd<T>(path: string, flags: string, f: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isPlainFileName(name: string): boolean {
  return (
    name !== "" && name !== "." && name !== ".." && basename(name) === name && !name.includes("\\")
  );
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Writes one safetensors file atomically (temp file beside it, fsync, rename). */
export function writeSafetensorsFile(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): void {
  const plan = planSafetensors(tensors, metadata);
  atomicWrite(path, (fd) => {
    writeAll(fd, plan.header);
    for (const t of plan.tensors) writeAll(fd, encodeTensor(t));
  });
}

/**
 * Writes a model directory: `config.json` (2-space JSON), the weights as `model.safetensors` or,
 * past `maxShardBytes`, as shards plus `model.safetensors.index.json`, and `extraFiles`.
 * Creates missing parent directories. Atomic as described at the top of this file.
 */
export function writeModelDir(
  dir: string,
  config: object,
  tensors: readonly TensorToWrite[],
  opts: WriteModelDirOptions = {},
): void {
  const target = resolve(dir);
  if (existsSync(target) && !isDirectory(target)) {
    throw new ModelDirError(`${target}: exists and is not a directory`);
  }
  const extra = opts.extraFiles ?? {};
  checkExtraNames(extra);
  const temp = tempName(target);
  mkdirSync(dirname(target), { recursive: true });
  mkdirSync(temp);
  try {
    const names = writeFiles(temp, config, tensors, opts, extra);
    if (!existsSync(target)) renameSync(temp, target);
    else replaceFiles(temp, target, names);
    syncDir(dirname(target));
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Writes everything into `temp`; returns the file names in the order they must be moved in. */
function writeFiles(
  temp: string,
  config: object,
  tensors: readonly TensorToWrite[],
  opts: WriteModelDirOptions,
  extra: Record<string, string | Uint8Array>,
): string[] {
  const metadata = opts.metadata ?? { format: "pt" };
  const shards = splitShards(tensors, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const names: string[] = [];
  if (shards.length === 1) {
    writeSafetensorsFile(join(temp, SINGLE), shards[0], metadata);
    names.push(SINGLE);
  } else {
    const weightMap = new Map<string, string>();
    shards.forEach((shard, i) => {
      const name = `model-${pad5(i + 1)}-of-${pad5(shards.length)}.safetensors`;
      writeSafetensorsFile(join(temp, name), shard, metadata);
      for (const t of shard) weightMap.set(t.name, name);
      names.push(name);
    });
    const totalSize = tensors.reduce((s, t) => s + t.data.length * bytesPerValue(t), 0);
    writeText(
      join(temp, INDEX),
      jsonText({ metadata: { total_size: totalSize }, weight_map: Object.fromEntries(weightMap) }),
    );
    names.push(INDEX);
  }
  for (const [name, content] of Object.entries(extra)) {
    writeBytes(join(temp, name), typeof content === "string" ? encodeUtf8(content) : content);
    names.push(name);
  }
  writeText(join(temp, CONFIG), jsonText(config));
  names.push(CONFIG);
  return names;
}

/** Greedy split in name order; a tensor larger than the limit gets a shard of its own. */
function splitShards(tensors: readonly TensorToWrite[], maxBytes: number): TensorToWrite[][] {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  sorted.forEach((t, i) => {
    if (i > 0 && sorted[i - 1].name === t.name) {
      throw new ModelDirError(`tensor "${t.name}": duplicate tensor name`);
    }
  });
  const shards: TensorToWrite[][] = [[]];
  let size = 0;
  for (const t of sorted) {
    const bytes = t.data.length * bytesPerValue(t);
    const current = shards[shards.length - 1];
    if (current.length > 0 && size + bytes > maxBytes) {
      shards.push([t]);
      size = bytes;
    } else {
      current.push(t);
      size += bytes;
    }
  }
  return shards;
}

/** Moves the new files over the old ones one by one, then removes the old layout's weights. */
function replaceFiles(temp: string, target: string, names: string[]): void {
  for (const name of names) renameSync(join(temp, name), join(target, name));
  const keep = new Set(names);
  for (const name of readdirSync(target)) {
    const weights = name === SINGLE || name === INDEX || SHARD_PATTERN.test(name);
    if (weights && !keep.has(name)) rmSync(join(target, name), { force: true });
  }
  syncDir(target);
}

function checkExtraNames(extra: Record<string, string | Uint8Array>): void {
  for (const name of Object.keys(extra)) {
    const reserved =
      name === CONFIG || name === SINGLE || name === INDEX || SHARD_PATTERN.test(name);
    if (reserved || !isPlainFileName(name)) {
      throw new ModelDirError(`extraFiles: "${name}" is not an allowed file name`);
    }
  }
}

function bytesPerValue(t: TensorToWrite): number {
  return DTYPE_BYTES[t.dtype ?? "F32"];
}

function atomicWrite(path: string, write: (fd: number) => void): void {
  const temp = tempName(resolve(path));
  try {
    withFd(temp, "wx", (fd) => {
      write(fd);
      fsyncSync(fd);
    });
    renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
}

function writeText(path: string, text: string): void {
  writeBytes(path, encodeUtf8(text));
}

function writeBytes(path: string, bytes: Uint8Array): void {
  atomicWrite(path, (fd) => {
    writeAll(fd, bytes);
  });
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done));
  }
}

/** fsync a directory so renames in it are durable; not supported everywhere (e.g. Windows). */
function syncDir(path: string): void {
  try {
    withFd(path, "r", (fd) => {
      fsyncSync(fd);
    });
  } catch {
    // best effort
  }
}

function tempName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function encodeUtf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function pad5(n: number): string {
  return String(n).padStart(5, "0");
}
