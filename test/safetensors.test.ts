import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  decodeFloat32,
  decodeInt,
  float32ToBf16,
  parseHeader,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type TensorEntry,
} from "../src/checkpoint/safetensors.ts";

const FIXTURES = new URL("../../shared/fixtures/huginn-reference/", import.meta.url);

/** A file from a header (object, or raw JSON text) and data bytes; `length` overrides N. */
function rawFile(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  length?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function only(bytes: Uint8Array, name = "t") {
  const t = parseSafetensors(bytes, "x.safetensors").get(name);
  assert.ok(t !== undefined);
  return t;
}

function bitsOf(values: Float32Array): number[] {
  return [...new Uint32Array(values.buffer, values.byteOffset, values.length)];
}

function f32(x: number): number {
  return Math.fround(x);
}

test("F32 round trip keeps every bit (NaN, infinities, -0, subnormals)", () => {
  const data = new Float32Array([1.5, -0, Infinity, -Infinity, NaN, 1e-45, 3.4028234663852886e38]);
  const bytes = serializeSafetensors([{ name: "t", shape: [7], data }], { format: "pt" });
  const t = only(bytes);
  assert.equal(t.dtype, "F32");
  assert.deepEqual(t.shape, [7]);
  assert.deepEqual(bitsOf(t.float32()), bitsOf(data));
  assert.deepEqual(parseHeader(bytes, bytes.length, "x").metadata, { format: "pt" });
});

test("written layout: names sorted, contiguous, header padded with spaces to 8 bytes", () => {
  const bytes = serializeSafetensors([
    { name: "b", shape: [2], data: new Float32Array(2) },
    { name: "a", shape: [1, 3], data: new Float32Array(3) },
    { name: "c", shape: [], data: new Int32Array([7]), dtype: "I64" },
  ]);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{"a":.*"b":.*"c":.*\} *$/);
  const header = parseHeader(bytes, bytes.length, "x");
  const ranges = [...header.tensors.values()].map((e) => [e.name, e.begin, e.end]);
  assert.deepEqual(ranges, [
    ["a", 0, 12],
    ["b", 12, 20],
    ["c", 20, 28],
  ]);
  assert.equal(bytes.length, 8 + n + 28);
});

test("BF16: exact values round trip, ties round to even, NaN and infinities survive", () => {
  const exact = [1, -2, 0.5, 1 + 2 ** -7, 3.140625, -0, Infinity, -Infinity, 2 ** -133];
  const t = only(
    serializeSafetensors([
      { name: "t", shape: [exact.length], data: new Float32Array(exact), dtype: "BF16" },
    ]),
  );
  assert.equal(t.dtype, "BF16");
  assert.deepEqual([...t.float32()], exact);

  assert.equal(float32ToBf16(1), 0x3f80);
  assert.equal(float32ToBf16(1 + 2 ** -8), 0x3f80); // halfway, even neighbour below
  assert.equal(float32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // halfway, even neighbour above
  assert.equal(float32ToBf16(f32(1 + 2 ** -8 + 2 ** -20)), 0x3f81); // just above halfway
  assert.equal(float32ToBf16(f32(1 + 2 ** -8 - 2 ** -20)), 0x3f80); // just below halfway
  assert.equal(float32ToBf16(-(1 + 3 * 2 ** -8)), 0xbf82);
  assert.equal(float32ToBf16(3.4028234663852886e38), 0x7f80); // max float32 rounds to +inf
  assert.equal(float32ToBf16(Infinity), 0x7f80);
  assert.equal(float32ToBf16(-Infinity), 0xff80);

  const nanLowPayload = new Float32Array(new Uint32Array([0x7f800001]).buffer)[0];
  assert.ok(Number.isNaN(nanLowPayload));
  const bits = float32ToBf16(nanLowPayload);
  assert.ok((bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0, "still a NaN, not infinity");
  const rounded = only(
    serializeSafetensors([
      { name: "t", shape: [2], data: new Float32Array([NaN, 1 + 2 ** -8]), dtype: "BF16" },
    ]),
  ).float32();
  assert.ok(Number.isNaN(rounded[0]));
  assert.equal(rounded[1], 1);
});

test("F16 decodes known bit patterns exactly (subnormals, infinities, NaN)", () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0x0400, 2 ** -14],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x8000, -0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const data = new Uint8Array(2 * (cases.length + 1));
  const view = new DataView(data.buffer);
  cases.forEach(([bits], i) => {
    view.setUint16(2 * i, bits, true);
  });
  view.setUint16(2 * cases.length, 0x7e00, true);
  const n = cases.length + 1;
  const values = only(
    rawFile({ t: { dtype: "F16", shape: [n], data_offsets: [0, 2 * n] } }, data),
  ).float32();
  cases.forEach(([, expected], i) => {
    assert.equal(values[i], expected, `case ${i}`);
  });
  assert.ok(Number.isNaN(values[cases.length]));
});

test("F64 rounds to nearest float32; integer dtypes decode to int32", () => {
  const f64 = new Float64Array([0.1, -1e300, 2.5]);
  const t = only(
    rawFile({ t: { dtype: "F64", shape: [3], data_offsets: [0, 24] } }, new Uint8Array(f64.buffer)),
  );
  assert.deepEqual([...t.float32()], [f32(0.1), -Infinity, 2.5]);

  const bytes = new Uint8Array([0xff, 0x80, 0x01, 0xfe, 0xff, 0x02, 0x00, 1, 0]);
  const file = rawFile(
    {
      i8: { dtype: "I8", shape: [2], data_offsets: [0, 2] },
      u8: { dtype: "U8", shape: [2], data_offsets: [2, 4] },
      i16: { dtype: "I16", shape: [1], data_offsets: [4, 6] },
      b: { dtype: "BOOL", shape: [3], data_offsets: [6, 9] },
    },
    bytes,
  );
  const parsed = parseSafetensors(file, "x");
  assert.deepEqual([...(parsed.get("i8")?.int32() ?? [])], [-1, -128]);
  assert.deepEqual([...(parsed.get("u8")?.int32() ?? [])], [1, 254]);
  assert.deepEqual([...(parsed.get("i16")?.int32() ?? [])], [0x02ff]);
  assert.deepEqual([...(parsed.get("b")?.int32() ?? [])], [0, 1, 0]);
});

test("I64 and I32 round trip from Int32Array; out-of-range I64 is an error", () => {
  const data = new Int32Array([0, 1, -1, 2147483647, -2147483648]);
  const bytes = serializeSafetensors([
    { name: "a", shape: [5], data, dtype: "I64" },
    { name: "b", shape: [5], data, dtype: "I32" },
  ]);
  assert.deepEqual([...only(bytes, "a").int32()], [...data]);
  assert.deepEqual([...only(bytes, "b").int32()], [...data]);

  const big = new BigInt64Array([5n, 2n ** 31n]);
  const file = rawFile(
    { t: { dtype: "I64", shape: [2], data_offsets: [0, 16] } },
    new Uint8Array(big.buffer),
  );
  assert.throws(() => only(file).int32(), {
    name: "SafetensorsError",
    message: 'x.safetensors: tensor "t": I64 value 2147483648 at index 1 does not fit in int32',
  });
});

test("decoding checks dtype kind and byte count; unaligned F32 bytes are copied", () => {
  const entry: TensorEntry = {
    fileName: "f",
    name: "w",
    dtype: "F32",
    shape: [2],
    begin: 0,
    end: 8,
  };
  const backing = new Uint8Array(9);
  new DataView(backing.buffer).setFloat32(1, 1.25, true);
  new DataView(backing.buffer).setFloat32(5, -3, true);
  assert.deepEqual([...decodeFloat32(entry, backing.subarray(1))], [1.25, -3]);
  assert.throws(() => decodeFloat32(entry, backing), /f: tensor "w": given 9 bytes, expected 8/);
  assert.throws(
    () => decodeInt(entry, backing.subarray(1)),
    /tensor "w": dtype F32 is not an integer/,
  );
  const ints: TensorEntry = { ...entry, dtype: "I32" };
  assert.throws(
    () => decodeFloat32(ints, backing.subarray(1)),
    /tensor "w": dtype I32 is not a float/,
  );
});

test("serialize rejects invalid tensors", () => {
  const cases: [Parameters<typeof serializeSafetensors>[0], RegExp][] = [
    [
      [{ name: "t", shape: [2, 2], data: new Float32Array(3) }],
      /tensor "t": shape \[2, 2\] needs 4 values, got 3/,
    ],
    [[{ name: "t", shape: [-1], data: new Float32Array(0) }], /tensor "t": shape \[-1\]/],
    [
      [{ name: "t", shape: [1], data: new Int32Array(1) }],
      /tensor "t": dtype F32 is written from a Float32Array/,
    ],
    [
      [{ name: "t", shape: [1], data: new Float32Array(1), dtype: "I64" }],
      /tensor "t": dtype I64 .* Int32Array/,
    ],
    [
      [
        { name: "t", shape: [1], data: new Float32Array(1) },
        { name: "t", shape: [1], data: new Float32Array(1) },
      ],
      /tensor "t": duplicate/,
    ],
    [[{ name: "__metadata__", shape: [1], data: new Float32Array(1) }], /reserved/],
  ];
  for (const [tensors, message] of cases) {
    assert.throws(() => serializeSafetensors(tensors), { name: "SafetensorsError", message });
  }
});

test("reads the Huginn reference fixtures", () => {
  const weights = readFileSync(new URL("weights.safetensors", FIXTURES));
  const tensors = parseSafetensors(weights, "weights.safetensors");
  assert.equal(tensors.size, 40);
  const wte = tensors.get("transformer.wte.weight");
  assert.equal(wte?.dtype, "F32");
  assert.deepEqual(wte.shape, [96, 64]);
  assert.equal(wte.float32().length, 96 * 64);
  const freqs = tensors.get("freqs_cis");
  assert.deepEqual(freqs?.shape, [1, 64, 1, 8, 2]);
  const f = freqs.float32();
  assert.deepEqual([f[0], f[1]], [1, 0]); // position 0: cos 1, sin 0
  const header = parseHeader(weights, weights.length, "weights.safetensors");
  assert.equal(header.metadata.format, "pt");

  // Re-serialising gives the same data area byte for byte (sorted, contiguous).
  const again = serializeSafetensors(
    [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.float32() })),
    header.metadata,
  );
  const dataLength = weights.length - header.dataStart;
  assert.deepEqual(
    again.subarray(again.length - dataLength),
    new Uint8Array(weights.subarray(header.dataStart)),
  );

  const cases = parseSafetensors(
    readFileSync(new URL("cases.safetensors", FIXTURES)),
    "cases.safetensors",
  );
  assert.equal(cases.size, 111);
  const ids = cases.get("input_ids");
  assert.equal(ids?.dtype, "I64");
  assert.deepEqual(ids.shape, [2, 12]);
  assert.deepEqual([...ids.int32().subarray(0, 4)], [24, 56, 36, 42]);
  assert.throws(() => ids.float32(), SafetensorsError);
});

test("every malformed file is a SafetensorsError naming the file and the tensor", () => {
  const good = { t: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const data8 = new Uint8Array(8);
  const weights = readFileSync(new URL("weights.safetensors", FIXTURES));
  const cases: [string, Uint8Array, RegExp][] = [
    ["shorter than 8 bytes", new Uint8Array(5), /^x\.safetensors: 5 bytes, too short/],
    [
      "truncated data",
      weights.subarray(0, weights.length - 100),
      /^x\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] outside the \d+-byte data area$/,
    ],
    [
      "header length past the file",
      rawFile(good, data8, 1000n),
      /header length 1000 runs past the end of the \d+-byte file/,
    ],
    [
      "header length 2^60",
      rawFile(good, data8, 2n ** 60n),
      /header length 1152921504606846976 exceeds/,
    ],
    ["header length 1", rawFile(good, data8, 1n), /header length 1 is too small/],
    ["invalid UTF-8", rawFile('"\\u00ff"', data8).fill(0xff, 8, 10), /header is not valid UTF-8/],
    ["invalid JSON", rawFile('{"t": ', data8), /header is not valid JSON/],
    ["array", rawFile("[1, 2]", data8), /header is an array, expected a JSON object/],
    ["null", rawFile("null", data8), /header is null, expected a JSON object/],
    ["entry not object", rawFile({ t: 3 }), /tensor "t": entry is a number, expected an object/],
    [
      "unknown dtype",
      rawFile({ t: { ...good.t, dtype: "F8" } }, data8),
      /tensor "t": unknown dtype "F8"/,
    ],
    [
      "missing dtype",
      rawFile({ t: { shape: [2], data_offsets: [0, 8] } }, data8),
      /tensor "t": unknown dtype missing/,
    ],
    [
      "negative dim",
      rawFile({ t: { ...good.t, shape: [-2] } }, data8),
      /tensor "t": shape \[-2\] is not an array of integers >= 0/,
    ],
    [
      "fractional dim",
      rawFile({ t: { ...good.t, shape: [1.5] } }, data8),
      /tensor "t": shape \[1\.5\]/,
    ],
    ["shape not array", rawFile({ t: { ...good.t, shape: "2" } }, data8), /tensor "t": shape "2"/],
    [
      "offsets not a pair",
      rawFile({ t: { ...good.t, data_offsets: [0] } }, data8),
      /tensor "t": data_offsets \[0\] is not \[begin, end\]/,
    ],
    [
      "offsets reversed",
      rawFile({ t: { ...good.t, data_offsets: [8, 0] } }, data8),
      /tensor "t": data_offsets \[8, 0\] outside/,
    ],
    [
      "offsets past end",
      rawFile({ t: { ...good.t, data_offsets: [4, 12] } }, data8),
      /tensor "t": data_offsets \[4, 12\] outside the 8-byte data area/,
    ],
    [
      "overlap",
      rawFile({ t: good.t, u: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, data8),
      /tensor "u": data_offsets \[4, 8\] overlap tensor "t" \[0, 8\]/,
    ],
    [
      "size mismatch",
      rawFile(
        { "transformer.wte.weight": { dtype: "F32", shape: [96, 64], data_offsets: [0, 100] } },
        new Uint8Array(100),
      ),
      /^x\.safetensors: tensor "transformer\.wte\.weight": data_offsets \[0, 100\] hold 100 bytes but shape \[96, 64\] of F32 needs 24576$/,
    ],
    [
      "huge shape (no allocation)",
      rawFile({ t: { ...good.t, shape: [2 ** 40, 2 ** 40] } }, data8),
      /tensor "t": data_offsets \[0, 8\] hold 8 bytes but shape/,
    ],
    [
      "metadata value",
      rawFile({ ...good, __metadata__: { format: 1 } }, data8),
      /__metadata__ "format" is a number, expected a string/,
    ],
    [
      "metadata not object",
      rawFile({ ...good, __metadata__: ["pt"] }, data8),
      /__metadata__ is an array/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(
      () => parseSafetensors(bytes, "x.safetensors"),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, what);
        assert.match(e.message, message, what);
        assert.match(e.message, /^x\.safetensors: /, what);
        return true;
      },
    );
  }
});

test("parseHeader needs the whole header in the prefix", () => {
  const file = rawFile(
    { t: { dtype: "F32", shape: [2], data_offsets: [0, 8] } },
    new Uint8Array(8),
  );
  assert.throws(
    () => parseHeader(file.subarray(0, 20), file.length, "x"),
    /x: given 20 bytes but the header needs the first \d+/,
  );
  const header = parseHeader(file.subarray(0, file.length - 8), file.length, "x");
  assert.equal(header.dataStart, file.length - 8);
});
