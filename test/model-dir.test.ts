import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  parseHeader,
  parseSafetensors,
  SafetensorsError,
  type TensorToWrite,
} from "../src/checkpoint/safetensors.ts";
import {
  ModelDirError,
  readModelDir,
  readSafetensorsFile,
  writeModelDir,
  writeSafetensorsFile,
} from "../src/node/model-dir.ts";

const FIXTURES = fileURLToPath(new URL("../../shared/fixtures/huginn-reference/", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "loom-model-dir-"));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

let counter = 0;
/** A fresh path (not created) inside the test's temp root. */
function fresh(name = "m"): string {
  counter += 1;
  return join(root, `${name}${counter}`);
}

const tensors: TensorToWrite[] = [
  { name: "b.weight", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
  { name: "a.bias", shape: [3], data: new Float32Array([0.5, -1, 2]), dtype: "BF16" },
  { name: "c.ids", shape: [2], data: new Int32Array([7, -8]), dtype: "I64" },
  { name: "d.big", shape: [4, 4], data: new Float32Array(16).map((_, i) => i / 8) },
];

function assertRoundTrip(read: ReturnType<typeof readModelDir>["tensors"]): void {
  assert.deepEqual([...read.keys()].sort(), tensors.map((t) => t.name).sort());
  for (const t of tensors) {
    const got = read.get(t.name);
    assert.ok(got !== undefined, t.name);
    assert.equal(got.dtype, t.dtype ?? "F32");
    assert.deepEqual(got.shape, t.shape);
    const values = t.data instanceof Int32Array ? got.int32() : got.float32();
    assert.deepEqual([...values], [...t.data], t.name);
  }
}

function noTempLeftovers(dir: string): void {
  const leftovers = readdirSync(dir, { recursive: true }).filter((f) =>
    String(f).includes(".tmp-"),
  );
  assert.deepEqual(leftovers, []);
}

test("readSafetensorsFile reads the fixture by offset, same values as the in-memory parser", () => {
  const path = join(FIXTURES, "weights.safetensors");
  const file = readSafetensorsFile(path);
  const memory = parseSafetensors(readFileSync(path), "weights.safetensors");
  assert.equal(file.tensors.size, 40);
  assert.equal(file.metadata.format, "pt");
  for (const [name, t] of memory) {
    const got = file.tensors.get(name);
    assert.equal(got?.file, path);
    assert.deepEqual(got.shape, t.shape);
    assert.deepEqual(got.float32(), t.float32(), name);
  }
  const cases = readSafetensorsFile(join(FIXTURES, "cases.safetensors"));
  assert.deepEqual(cases.tensors.get("input_ids")?.shape, [2, 12]);
});

test("writeSafetensorsFile / readSafetensorsFile round trip, atomically", () => {
  const dir = fresh();
  mkdirSync(dir);
  const path = join(dir, "out.safetensors");
  writeSafetensorsFile(path, tensors, { note: "hi" });
  writeSafetensorsFile(path, tensors, { note: "again" }); // replaces the existing file
  const file = readSafetensorsFile(path);
  assert.deepEqual(file.metadata, { note: "again" });
  assertRoundTrip(file.tensors);
  assert.deepEqual(readdirSync(dir), ["out.safetensors"]);
  assert.throws(() => {
    writeSafetensorsFile(path, [{ name: "x", shape: [2], data: new Float32Array(1) }]);
  }, SafetensorsError);
  assert.deepEqual(readdirSync(dir), ["out.safetensors"]);
});

test("single-file model directory round trip with config and extra files", () => {
  const dir = fresh();
  const config = { model_type: "huginn_raven", n_embd: 64, nested: { a: [1, 2] } };
  const tokenizer = new Uint8Array([1, 2, 3]);
  writeModelDir(dir, config, tensors, {
    extraFiles: { "tokenizer.json": '{"v":1}', "blob.bin": tokenizer },
  });
  assert.deepEqual(readdirSync(dir).sort(), [
    "blob.bin",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
  ]);
  assert.equal(
    readFileSync(join(dir, "config.json"), "utf8"),
    `${JSON.stringify(config, null, 2)}\n`,
  );
  assert.equal(readFileSync(join(dir, "tokenizer.json"), "utf8"), '{"v":1}');
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, "blob.bin"))), tokenizer);
  const bytes = readFileSync(join(dir, "model.safetensors"));
  assert.deepEqual(parseHeader(bytes, bytes.length, "m").metadata, { format: "pt" });

  const model = readModelDir(dir);
  assert.deepEqual(model.config, config);
  assert.deepEqual(model.files, [join(dir, "model.safetensors")]);
  assertRoundTrip(model.tensors);
  noTempLeftovers(root);
});

test("sharded model directory round trip with a tiny maxShardBytes", () => {
  const dir = fresh();
  writeModelDir(dir, { n: 1 }, tensors, { maxShardBytes: 30 });
  // name order a.bias (6 B) | b.weight (24 B) -> 30 | c.ids (16 B) | d.big (64 B) alone
  const shards = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"];
  shards.push("model-00003-of-00003.safetensors");
  assert.deepEqual(readdirSync(dir).sort(), [
    "config.json",
    ...shards,
    "model.safetensors.index.json",
  ]);
  const index = JSON.parse(
    readFileSync(join(dir, "model.safetensors.index.json"), "utf8"),
  ) as unknown;
  assert.deepEqual(index, {
    metadata: { total_size: 6 + 24 + 16 + 64 },
    weight_map: {
      "a.bias": shards[0],
      "b.weight": shards[0],
      "c.ids": shards[1],
      "d.big": shards[2],
    },
  });
  const model = readModelDir(dir);
  assert.deepEqual(
    model.files,
    shards.map((s) => join(dir, s)),
  );
  assertRoundTrip(model.tensors);
});

/** A sharded directory whose index or shards the test then breaks. */
function shardedDir(): string {
  const dir = fresh();
  writeModelDir(dir, {}, tensors, { maxShardBytes: 30 });
  return dir;
}

function writeIndex(dir: string, weightMap: Record<string, string>): string {
  const path = join(dir, "model.safetensors.index.json");
  writeFileSync(path, JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return path;
}

test("sharded directory errors name the index, the shard and the tensor", () => {
  let dir = shardedDir();
  rmSync(join(dir, "model-00002-of-00003.safetensors"));
  assert.throws(() => readModelDir(dir), {
    name: "ModelDirError",
    message: `${join(dir, "model.safetensors.index.json")}: shard model-00002-of-00003.safetensors (of tensor "c.ids") not found`,
  });

  dir = shardedDir();
  writeFileSync(join(dir, "model.safetensors.index.json"), "{ broken");
  assert.throws(() => readModelDir(dir), /model\.safetensors\.index\.json: invalid JSON/);

  dir = shardedDir();
  writeFileSync(join(dir, "model.safetensors.index.json"), '{"metadata": {}}');
  assert.throws(() => readModelDir(dir), /index\.json: "weight_map" is missing or not an object/);

  dir = shardedDir();
  writeIndex(dir, { "a.bias": "../model-00001-of-00003.safetensors" });
  assert.throws(
    () => readModelDir(dir),
    /tensor "a\.bias": shard "\.\.\/model-00001-of-00003\.safetensors" is not a file name/,
  );

  dir = shardedDir();
  writeIndex(dir, {
    "a.bias": "model-00001-of-00003.safetensors",
    "c.ids": "model-00001-of-00003.safetensors",
  });
  assert.throws(
    () => readModelDir(dir),
    /index\.json: tensor "c\.ids" is not in its shard model-00001-of-00003\.safetensors/,
  );

  dir = shardedDir();
  writeSafetensorsFile(join(dir, "model-00002-of-00003.safetensors"), [tensors[0]]);
  writeIndex(dir, {
    "b.weight": "model-00001-of-00003.safetensors",
    "c.ids": "model-00002-of-00003.safetensors",
  });
  assert.throws(
    () => readModelDir(dir),
    /index\.json: tensor "b\.weight" is in both .*model-00001-of-00003\.safetensors and .*model-00002-of-00003\.safetensors/,
  );
});

test("missing or bad config, missing weights, and a missing directory are clear errors", () => {
  let dir = fresh();
  writeModelDir(dir, {}, tensors);
  rmSync(join(dir, "config.json"));
  assert.throws(() => readModelDir(dir), {
    name: "ModelDirError",
    message: new RegExp(`^${escape(join(dir, "config.json"))}: cannot read`),
  });
  writeFileSync(join(dir, "config.json"), "[1]");
  assert.throws(() => readModelDir(dir), /config\.json: expected a JSON object/);
  writeFileSync(join(dir, "config.json"), "{,}");
  assert.throws(() => readModelDir(dir), /config\.json: invalid JSON/);

  dir = fresh();
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), "{}");
  assert.throws(() => readModelDir(dir), {
    message: `${dir}: neither model.safetensors nor model.safetensors.index.json found`,
  });
  assert.throws(() => readModelDir(join(dir, "nope")), {
    message: `${join(dir, "nope")}: not a directory`,
  });
});

test("headers are validated against the real file size; a file shrunk later fails on read", () => {
  const dir = fresh();
  writeModelDir(dir, {}, tensors);
  const path = join(dir, "model.safetensors");
  const size = readFileSync(path).length;
  const model = readModelDir(dir);
  truncateSync(path, size - 4);
  assert.throws(() => model.tensors.get("d.big")?.float32(), {
    name: "ModelDirError",
    message: new RegExp(`^${escape(path)}: unexpected end of file at byte \\d+$`),
  });
  assert.throws(
    () => readModelDir(dir),
    (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.match(
        e.message,
        /model\.safetensors: tensor "d\.big": data_offsets \[\d+, \d+\] outside/,
      );
      return true;
    },
  );
});

test("writing over an existing directory replaces the weights and keeps other files", () => {
  const dir = shardedDir(); // 3 shards
  writeFileSync(join(dir, "README.md"), "keep me");
  writeModelDir(dir, { v: 2 }, tensors, { maxShardBytes: 50 });
  assert.deepEqual(readdirSync(dir).sort(), [
    "README.md",
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
  ]);
  assertRoundTrip(readModelDir(dir).tensors);

  writeModelDir(dir, { v: 3 }, tensors.slice(0, 2));
  assert.deepEqual(readdirSync(dir).sort(), ["README.md", "config.json", "model.safetensors"]);
  const model = readModelDir(dir);
  assert.deepEqual(model.config, { v: 3 });
  assert.deepEqual([...model.tensors.keys()].sort(), ["a.bias", "b.weight"]);
  assert.equal(readFileSync(join(dir, "README.md"), "utf8"), "keep me");
  noTempLeftovers(root);
});

test("writeModelDir rejects bad targets, extra file names and tensors, leaving nothing behind", () => {
  const file = fresh();
  writeFileSync(file, "x");
  assert.throws(() => {
    writeModelDir(file, {}, tensors);
  }, /exists and is not a directory/);
  for (const name of ["config.json", "model-00001-of-00002.safetensors", "a/b.txt", ".."]) {
    assert.throws(() => {
      writeModelDir(fresh(), {}, tensors, { extraFiles: { [name]: "" } });
    }, ModelDirError);
  }
  const dir = fresh();
  const dup = [tensors[0], tensors[0]];
  assert.throws(() => {
    writeModelDir(dir, {}, dup, { maxShardBytes: 1 });
  }, /tensor "b\.weight": duplicate/);
  assert.throws(() => {
    writeModelDir(dir, {}, [{ name: "x", shape: [3], data: new Float32Array(2) }]);
  }, SafetensorsError);
  assert.deepEqual(
    readdirSync(root).filter((f) => f.startsWith(dir.slice(root.length + 1))),
    [],
  );
  noTempLeftovers(root);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
