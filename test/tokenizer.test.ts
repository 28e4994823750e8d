import assert from "node:assert/strict";
import { test } from "node:test";
import { DataError } from "../src/data/errors.ts";
import {
  BOS_ID,
  buildCharTokenizer,
  CharTokenizer,
  EOS_ID,
  PAD_ID,
  paddedVocabSize,
  SEP_ID,
  SPECIAL_TOKENS,
  UNK_ID,
} from "../src/data/tokenizer.ts";

test("special tokens take ids 0..4", () => {
  assert.deepEqual(SPECIAL_TOKENS, ["<pad>", "<bos>", "<eos>", "<sep>", "<unk>"]);
  assert.deepEqual([PAD_ID, BOS_ID, EOS_ID, SEP_ID, UNK_ID], [0, 1, 2, 3, 4]);
});

test("characters follow the specials in code-point order", () => {
  const tok = buildCharTokenizer(["cab", "ba"]);
  assert.deepEqual(tok.chars, ["a", "b", "c"]);
  assert.equal(tok.vocabSize, 8);
  assert.deepEqual(tok.encode("abc"), [5, 6, 7]);
});

test("sorts by code point, not UTF-16 unit", () => {
  // U+FFFD is one unit 0xFFFD; U+1F600 starts with the surrogate 0xD83D, so UTF-16 order flips
  const tok = buildCharTokenizer(["😀\uFFFD"]);
  assert.deepEqual(tok.chars, ["\uFFFD", "😀"]);
});

test("round trip of non-ASCII text, one id per code point", () => {
  const text = "héllo wörld → 😀 日本";
  const tok = buildCharTokenizer([text]);
  const ids = tok.encode(text);
  assert.equal(ids.length, Array.from(text).length); // code points, not UTF-16 units
  assert.equal(tok.decode(ids), text);
});

test("unknown characters encode to <unk>", () => {
  const tok = buildCharTokenizer(["ab"]);
  assert.deepEqual(tok.encode("axb"), [5, UNK_ID, 6]);
});

test("decode drops specials by default and shows them on request", () => {
  const tok = buildCharTokenizer(["ab"]);
  const ids = [BOS_ID, 5, SEP_ID, 6, EOS_ID, PAD_ID];
  assert.equal(tok.decode(ids), "ab");
  assert.equal(tok.decode(ids, { showSpecials: true }), "<bos>a<sep>b<eos><pad>");
});

test("decode rejects ids outside the vocabulary", () => {
  const tok = buildCharTokenizer(["ab"]);
  assert.throws(() => tok.decode([7]), RangeError);
  assert.throws(() => tok.decode([-1]), RangeError);
});

test("toJSON / fromJSON round trip through JSON text", () => {
  const tok = buildCharTokenizer(["x+y=z", "ü😀"]);
  const json: unknown = JSON.parse(JSON.stringify(tok));
  assert.deepEqual(json, {
    type: "char",
    version: 1,
    specials: [...SPECIAL_TOKENS],
    chars: tok.chars,
  });
  const back = CharTokenizer.fromJSON(json);
  assert.deepEqual(back.chars, tok.chars);
  assert.deepEqual(back.encode("z😀"), tok.encode("z😀"));
});

test("fromJSON names the bad field", () => {
  const good = { type: "char", version: 1, specials: [...SPECIAL_TOKENS], chars: ["a", "b"] };
  const cases: [unknown, RegExp][] = [
    [[], /expected an object/],
    [{ ...good, type: "bpe" }, /field "type" must be "char", got "bpe"/],
    [{ ...good, version: 2 }, /field "version" must be 1, got 2/],
    [{ ...good, specials: ["<pad>"] }, /field "specials" must be/],
    [{ ...good, chars: "ab" }, /field "chars" must be an array of strings/],
    [{ ...good, chars: ["a", "bc"] }, /field "chars\[1\]" must be one character, got "bc"/],
    [{ ...good, chars: ["a", ""] }, /field "chars\[1\]" must be one character/],
    [{ ...good, chars: ["a", "a"] }, /field "chars\[1\]" repeats the character "a"/],
  ];
  for (const [obj, message] of cases) {
    assert.throws(
      () => CharTokenizer.fromJSON(obj),
      (e: unknown) => {
        assert.ok(e instanceof DataError);
        assert.match(e.message, /^tokenizer\.json: /);
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

test("paddedVocabSize rounds up to the multiple", () => {
  assert.equal(paddedVocabSize(17), 24);
  assert.equal(paddedVocabSize(16), 16);
  assert.equal(paddedVocabSize(17, 64), 64);
});
