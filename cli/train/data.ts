// The training data of a run, built from its DataSource: the training set, the tokenizer, held-out
// examples for periodic evaluation and (tasks) a harder test split written next to the model.
import { readFileSync } from "node:fs";
import { DataError } from "../../src/data/errors.ts";
import { type EncodedExample, type Example, encodeExample } from "../../src/data/example.ts";
import { parseExamplesJsonl, textToTokens } from "../../src/data/jsonl.ts";
import {
  defaultTestDifficulties,
  defaultTrainDifficulties,
  generateTask,
} from "../../src/data/tasks/index.ts";
import { type CharTokenizer, buildCharTokenizer } from "../../src/data/tokenizer.ts";
import { Rng } from "../../src/tensor/random.ts";
import type { TrainData } from "../../src/train/trainer.ts";
import { CliError } from "../args.ts";
import type { DataSource } from "./settings.ts";

export interface LoadedData {
  train: TrainData;
  /** The training examples before encoding (none for text). */
  trainExamples: Example[];
  tokenizer: CharTokenizer;
  /** In-distribution held-out examples for periodic evaluation (none for text). */
  evalExamples: Example[];
  /** Longest sequence the model must fit, in tokens (including <bos>, <sep>, <eos>). */
  longest: number;
  /** Where the longest training example is, for the error message. */
  longestWhere: string;
  /** Test examples up to twice the training difficulty (tasks only), written to DIR/test.jsonl. */
  testExamples: Example[];
}

/**
 * The data of `source`, with `tokenizer` when resuming (null: build one from the data) and the
 * model's context (null: not yet known), which caps the text sequence length.
 */
export function loadData(
  source: DataSource,
  tokenizer: CharTokenizer | null,
  blockSize: number | null,
): LoadedData {
  switch (source.kind) {
    case "task":
      return taskData(source, tokenizer);
    case "jsonl":
      return jsonlData(source.path, tokenizer);
    case "text":
      return textData(source.path, tokenizer, blockSize);
    default:
      return source satisfies never;
  }
}

function taskData(
  source: DataSource & { kind: "task" },
  tokenizer: CharTokenizer | null,
): LoadedData {
  const train = generateTask(source.task, {
    split: "train",
    count: source.count,
    seed: source.seed,
    difficulties: defaultTrainDifficulties(source.task),
  });
  const evalExamples = generateTask(source.task, {
    split: "test",
    count: 8 * defaultTrainDifficulties(source.task).length * 4,
    seed: source.seed,
    difficulties: defaultTrainDifficulties(source.task),
  });
  const testDiffs = defaultTestDifficulties(source.task);
  const testExamples = generateTask(source.task, {
    split: "test",
    count: 50 * testDiffs.length,
    seed: source.seed,
    difficulties: testDiffs,
  });
  const tok =
    tokenizer ??
    buildCharTokenizer([...train, ...testExamples].flatMap((e) => [e.prompt, e.answer]));
  return examplesData(train, tok, `task ${source.task}`, evalExamples.slice(0, 200), testExamples);
}

function jsonlData(path: string, tokenizer: CharTokenizer | null): LoadedData {
  const text = readText(path, "JSONL file");
  const all = parseExamplesJsonl(text, path);
  if (all.length === 0) throw new DataError(`${path}: no examples (the file is empty)`);
  const tok = tokenizer ?? buildCharTokenizer(all.flatMap((e) => [e.prompt, e.answer]));
  // hold out up to 5% (at most 200) for evaluation when there is enough data
  const nEval = all.length >= 400 ? Math.min(200, Math.floor(all.length * 0.05)) : 0;
  const order = Array.from({ length: all.length }, (_, i) => i);
  const rng = new Rng(0x5eed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const held = new Set(order.slice(0, nEval));
  const train = all.filter((_, i) => !held.has(i));
  const evalExamples = nEval > 0 ? all.filter((_, i) => held.has(i)) : train.slice(0, 100);
  return examplesData(train, tok, path, evalExamples, [], all);
}

function textData(
  path: string,
  tokenizer: CharTokenizer | null,
  blockSize: number | null,
): LoadedData {
  const text = readText(path, "text file");
  if (text.length < 2) throw new DataError(`${path}: the text is empty`);
  const tok = tokenizer ?? buildCharTokenizer([text]);
  const tokens = textToTokens(tok, text);
  const seqLen = Math.min(blockSize ?? 128, 128, tokens.length - 1);
  if (seqLen < 1) throw new DataError(`${path}: too short to train on`);
  return {
    train: { kind: "text", tokens, seqLen },
    trainExamples: [],
    tokenizer: tok,
    evalExamples: [],
    longest: seqLen,
    longestWhere: path,
    testExamples: [],
  };
}

function examplesData(
  train: Example[],
  tok: CharTokenizer,
  where: string,
  evalExamples: Example[],
  testExamples: Example[],
  all: Example[] = train,
): LoadedData {
  const encoded: EncodedExample[] = train.map((e) => encodeExample(tok, e));
  const difficulty = train.map((e) => e.difficulty);
  let longest = 0;
  let longestWhere = where;
  all.forEach((e, i) => {
    const n = encodeExample(tok, e).ids.length;
    if (n > longest) {
      longest = n;
      longestWhere =
        where.endsWith(".jsonl") || where.includes("/") ? `${where} example ${i + 1}` : where;
    }
  });
  return {
    train: {
      kind: "examples",
      encoded,
      ...(difficulty.some((d) => d !== undefined) ? { difficulty } : {}),
    },
    trainExamples: train,
    tokenizer: tok,
    evalExamples,
    longest,
    longestWhere,
    testExamples,
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new CliError(
      `cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}
