import assert from "node:assert/strict";
import { test } from "node:test";
import { DataError } from "../src/data/errors.ts";
import type { Example } from "../src/data/example.ts";
import { formatExamplesJsonl, parseExamplesJsonl, textToTokens } from "../src/data/jsonl.ts";
import { buildCharTokenizer } from "../src/data/tokenizer.ts";

test("parses examples, skipping blank lines and CRLF endings", () => {
  const text =
    '{"prompt":"1+1=","answer":"2","difficulty":1}\r\n\n  \n{"prompt":"","answer":"x"}\n';
  assert.deepEqual(parseExamplesJsonl(text, "a.jsonl"), [
    { prompt: "1+1=", answer: "2", difficulty: 1 },
    { prompt: "", answer: "x" },
  ]);
});

test("format and parse round trip", () => {
  const examples: Example[] = [
    { prompt: 'say "hi"\n', answer: "ünïcode 😀", difficulty: 3 },
    { prompt: "p", answer: "a" },
  ];
  const text = formatExamplesJsonl(examples);
  assert.equal(text.split("\n").length, 3); // two lines, newline-terminated
  assert.deepEqual(parseExamplesJsonl(text, "x.jsonl"), examples);
  assert.equal(formatExamplesJsonl([]), "");
});

test("a bad line throws a DataError naming file:line and the problem", () => {
  const good = '{"prompt":"p","answer":"a"}';
  const cases: [string, RegExp][] = [
    ["{not json", /invalid JSON/],
    ["[1,2]", /expected a JSON object/],
    ['"text"', /expected a JSON object/],
    ['{"answer":"a"}', /"prompt" must be a string, got nothing \(missing\)/],
    ['{"prompt":1,"answer":"a"}', /"prompt" must be a string, got a number/],
    ['{"prompt":"p"}', /"answer" must be a string/],
    ['{"prompt":"p","answer":null}', /"answer" must be a string, got null/],
    ['{"prompt":"p","answer":""}', /"answer" is empty/],
    ['{"prompt":"p","answer":"a","difficulty":1.5}', /"difficulty" must be an integer, got 1.5/],
    ['{"prompt":"p","answer":"a","difficulty":"3"}', /"difficulty" must be an integer, got "3"/],
  ];
  for (const [line, problem] of cases) {
    const text = `${good}\n\n${line}\n${good}\n`;
    assert.throws(
      () => parseExamplesJsonl(text, "data/train.jsonl"),
      (e: unknown) => {
        assert.ok(e instanceof DataError);
        assert.match(e.message, /^data\/train\.jsonl:3: /);
        assert.match(e.message, problem);
        return true;
      },
    );
  }
});

test("textToTokens encodes a whole text as one stream", () => {
  const tok = buildCharTokenizer(["ab\n"]);
  assert.deepEqual([...textToTokens(tok, "ab\nba")], tok.encode("ab\nba"));
});
