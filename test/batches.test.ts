import assert from "node:assert/strict";
import { test } from "node:test";
import { batchIterator, makeBatch, packText } from "../src/data/batches.ts";
import { encodeExample, encodePrompt, IGNORE_INDEX, nextTokenLabels } from "../src/data/example.ts";
import { BOS_ID, buildCharTokenizer, EOS_ID, PAD_ID, SEP_ID } from "../src/data/tokenizer.ts";
import { Rng } from "../src/tensor/random.ts";

const tok = buildCharTokenizer(["0123456789+="]);

test("encodeExample lays out <bos> prompt <sep> answer <eos>", () => {
  const enc = encodeExample(tok, { prompt: "1+2=", answer: "3" });
  assert.deepEqual(enc.ids, [BOS_ID, ...tok.encode("1+2="), SEP_ID, ...tok.encode("3"), EOS_ID]);
  assert.equal(enc.answerStart, 6);
  assert.deepEqual(encodePrompt(tok, "1+2="), enc.ids.slice(0, enc.answerStart));
});

test("labels are shifted and masked everywhere but the answer and <eos>", () => {
  const enc = encodeExample(tok, { prompt: "57+68=", answer: "125" });
  const { inputs, labels } = nextTokenLabels(enc);
  assert.deepEqual(inputs, enc.ids.slice(0, -1));
  assert.equal(labels.length, inputs.length);
  const kept = labels.flatMap((l, t) => (l === IGNORE_INDEX ? [] : [t]));
  assert.deepEqual(kept, [7, 8, 9, 10]); // targets ids[8..11] = "125" <eos>
  for (const t of kept) assert.equal(labels[t], enc.ids[t + 1]);
  assert.equal(labels.at(-1), EOS_ID);
  assert.deepEqual(tok.decode(kept.map((t) => labels[t])), "125");
});

test("makeBatch right-pads inputs with the pad id and labels with IGNORE_INDEX", () => {
  const encoded = [
    encodeExample(tok, { prompt: "1+1=", answer: "2" }),
    encodeExample(tok, { prompt: "10+10=", answer: "20" }),
  ];
  const batch = makeBatch(encoded, [0, 1], PAD_ID);
  assert.equal(batch.batch, 2);
  assert.equal(batch.seqLen, encoded[1].ids.length - 1);
  assert.equal(batch.inputIds.length, 2 * batch.seqLen);
  for (const [b, enc] of encoded.entries()) {
    const { inputs, labels } = nextTokenLabels(enc);
    const row = (a: Int32Array) => [...a.subarray(b * batch.seqLen, (b + 1) * batch.seqLen)];
    const pad = batch.seqLen - inputs.length;
    assert.deepEqual(row(batch.inputIds), [...inputs, ...Array<number>(pad).fill(PAD_ID)]);
    assert.deepEqual(row(batch.labels), [...labels, ...Array<number>(pad).fill(IGNORE_INDEX)]);
  }
  assert.throws(() => makeBatch(encoded, [2], PAD_ID), RangeError);
  assert.throws(() => makeBatch(encoded, [], PAD_ID), RangeError);
});

test("batchIterator visits every index once per epoch, seeded", () => {
  const epoch = (rng: Rng) => [...batchIterator(10, 4, rng)];
  const rng = new Rng(7);
  const first = epoch(rng);
  assert.deepEqual(
    first.map((b) => b.length),
    [4, 4, 2],
  );
  assert.deepEqual(
    first.flat().sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.deepEqual(epoch(new Rng(7)), first);
  assert.notDeepEqual(epoch(rng), first); // the next epoch reshuffles
  assert.throws(() => [...batchIterator(10, 0, rng)], RangeError);
});

test("packText samples contiguous windows with labels shifted by one", () => {
  const tokens = Int32Array.from({ length: 50 }, (_, i) => 100 + i);
  const batch = packText(tokens, 8, 5, new Rng(3));
  assert.equal(batch.inputIds.length, 40);
  for (let b = 0; b < 5; b++) {
    const start = batch.inputIds[b * 8] - 100;
    for (let t = 0; t < 8; t++) {
      assert.equal(batch.inputIds[b * 8 + t], tokens[start + t]);
      assert.equal(batch.labels[b * 8 + t], tokens[start + t + 1]);
    }
  }
  assert.deepEqual(packText(tokens, 8, 5, new Rng(3)), batch);
  assert.doesNotThrow(() => packText(tokens, 49, 1, new Rng(3)));
  assert.throws(() => packText(tokens, 50, 1, new Rng(3)), RangeError);
});
