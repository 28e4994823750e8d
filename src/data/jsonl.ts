/**
 * Dataset text formats. JSONL examples, one `{"prompt": "...", "answer": "...", "difficulty": 3}`
 * per line (difficulty optional), and plain text for language-model training. Strings in, values
 * out: reading the files is the caller's job.
 */
import { DataError } from "./errors.ts";
import type { Example } from "./example.ts";
import type { CharTokenizer } from "./tokenizer.ts";

/**
 * Parse JSONL examples. Blank lines are skipped; any other bad line throws a DataError that
 * starts with `fileName:line` and names the problem.
 */
export function parseExamplesJsonl(text: string, fileName: string): Example[] {
  const examples: Example[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    const problem = (what: string) => new DataError(`${fileName}:${i + 1}: ${what}`);
    examples.push(parseExample(line, problem));
  });
  return examples;
}

/** One JSON object per example, newline-terminated; inverse of parseExamplesJsonl. */
export function formatExamplesJsonl(examples: Iterable<Example>): string {
  let text = "";
  for (const { prompt, answer, difficulty } of examples) {
    text += JSON.stringify(
      difficulty === undefined ? { prompt, answer } : { prompt, answer, difficulty },
    );
    text += "\n";
  }
  return text;
}

/** Plain text as one token stream for language-model training (see `packText`). */
export function textToTokens(tok: CharTokenizer, text: string): Int32Array {
  return Int32Array.from(tok.encode(text));
}

function parseExample(line: string, problem: (what: string) => DataError): Example {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw problem(`invalid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw problem("expected a JSON object");
  }
  const { prompt, answer, difficulty } = value as Record<string, unknown>;
  if (typeof prompt !== "string") throw problem(`"prompt" must be a string, got ${kind(prompt)}`);
  if (typeof answer !== "string") throw problem(`"answer" must be a string, got ${kind(answer)}`);
  if (answer === "") throw problem(`"answer" is empty`);
  if (difficulty === undefined) return { prompt, answer };
  if (typeof difficulty !== "number" || !Number.isInteger(difficulty)) {
    throw problem(`"difficulty" must be an integer, got ${JSON.stringify(difficulty)}`);
  }
  return { prompt, answer, difficulty };
}

function kind(value: unknown): string {
  if (value === undefined) return "nothing (missing)";
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
