// Helpers shared by the commands: JSON token files and text prompts, errors that name the file.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BOS_ID, type CharTokenizer, SEP_ID } from "../src/data/tokenizer.ts";
import { TRAINER_STATE } from "../src/node/checkpoint-io.ts";
import { CliError, type Flags, type FlagSpecs, bool, str } from "./args.ts";

export function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new CliError(`cannot read ${what} ${path}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** A JSON array of token-id arrays. `equalLength`: rows must form a (B, T) batch. */
export function readTokenRows(path: string, equalLength: boolean): number[][] {
  const json = readJson(path, "token file");
  if (!Array.isArray(json) || json.length === 0) {
    throw new CliError(`${path}: expected a non-empty JSON array of token-id arrays`);
  }
  return json
    .map((row: unknown, i) => {
      if (!Array.isArray(row) || row.length === 0)
        throw new CliError(`${path}: row ${i} is not a non-empty array`);
      return row.map((id: unknown, j) => {
        if (typeof id !== "number" || !Number.isInteger(id)) {
          throw new CliError(
            `${path}: row ${i}, item ${j}: ${JSON.stringify(id)} is not an integer token id`,
          );
        }
        return id;
      });
    })
    .map((row, i, rows) => {
      if (equalLength && row.length !== rows[0].length) {
        throw new CliError(
          `${path}: row ${i} has ${row.length} tokens, row 0 has ${rows[0].length}`,
        );
      }
      return row;
    });
}

/** The `--bos` and `--sep` flags of commands that take `--prompt TEXT`. */
export const PROMPT_FRAME_FLAGS: FlagSpecs = {
  bos: { type: "boolean", help: "with --prompt: put <bos> first", default: false },
  sep: {
    type: "boolean",
    help: "with --prompt: end with <sep> (loom train's prompt format: --bos --sep asks a trained task)",
    default: false,
  },
};

/**
 * The token rows of `--tokens FILE.json` or of `--prompt TEXT` (one row, framed by `--bos` and
 * `--sep` as loom train frames a prompt); exactly one of the two must be given.
 */
export function promptRows(
  cmd: string,
  flags: Flags,
  tok: CharTokenizer | null,
  modelDir: string,
): number[][] {
  const file = str(flags, "tokens");
  const text = str(flags, "prompt");
  if ((file === undefined) === (text === undefined))
    throw new CliError(`loom ${cmd}: give exactly one of --tokens FILE.json and --prompt TEXT`);
  if (file !== undefined) return readTokenRows(file, false);
  if (tok === null)
    throw new CliError(`loom ${cmd}: --prompt needs a tokenizer.json in the model directory`);
  const ids = [
    ...(bool(flags, "bos") ? [BOS_ID] : []),
    ...tok.encode(text ?? ""),
    ...(bool(flags, "sep") ? [SEP_ID] : []),
  ];
  if (ids.length === 0) throw new CliError(`loom ${cmd}: --prompt is empty`);
  if (!bool(flags, "sep") && trainedOnExamples(modelDir)) {
    console.error(
      `loom ${cmd}: note: this model learned prompts framed as <bos> PROMPT <sep>; add --bos --sep to ask it one`,
    );
  }
  return [ids];
}

/** Whether loom train made `dir` from prompt/answer examples (a task or JSONL, not text). */
function trainedOnExamples(dir: string): boolean {
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(join(dir, TRAINER_STATE), "utf8"));
  } catch {
    return false; // no trainer state: not loom train's, or not readable; the prompt stays as given
  }
  const kind = (state as { data?: { kind?: unknown } } | null)?.data?.kind;
  return kind === "task" || kind === "jsonl";
}
