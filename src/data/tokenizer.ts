/**
 * Character-level tokenizer built from data. Ids 0..4 are the special tokens, then one id per
 * character seen (a Unicode code point, not a UTF-16 unit), in code-point order. Saved as a small
 * versioned JSON, `tokenizer.json`, next to a model.
 */
import { DataError } from "./errors.ts";

/** The special tokens, in id order: `<pad>`=0, `<bos>`=1, `<eos>`=2, `<sep>`=3, `<unk>`=4. */
const DIGITS = Array.from({ length: 10 }, (_, d) => String(d));

export const SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<sep>", "<unk>"] as const;
export const PAD_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
/** Separates the prompt from the answer. */
export const SEP_ID = 3;
/** Stands for any character the tokenizer was not built with. */
export const UNK_ID = 4;

/** The `tokenizer.json` format. */
export interface CharTokenizerJson {
  type: "char";
  version: 1;
  specials: string[];
  chars: string[];
}

export interface DecodeOptions {
  /** Render special tokens as their names (`<eos>`) instead of dropping them. Default false. */
  showSpecials?: boolean;
}

export class CharTokenizer {
  /** The character of each non-special id: `chars[id - SPECIAL_TOKENS.length]`. */
  readonly chars: readonly string[];
  private readonly idOf = new Map<string, number>();

  /** `chars`: distinct single code points; their order fixes the ids. */
  constructor(chars: readonly string[]) {
    const problem = charsProblem(chars);
    if (problem !== null) throw new DataError(`CharTokenizer: ${problem}`);
    chars.forEach((ch, i) => this.idOf.set(ch, SPECIAL_TOKENS.length + i));
    this.chars = [...chars];
  }

  /** Number of ids: specials plus characters. */
  get vocabSize(): number {
    return SPECIAL_TOKENS.length + this.chars.length;
  }

  /** The ids of the characters 0-9 the vocabulary has (Abacus embeddings' digits). */
  digitIds(): number[] {
    return DIGITS.flatMap((ch) => this.idOf.get(ch) ?? []);
  }

  /** One id per code point; unknown characters become `<unk>`. No specials are added. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const ch of text) ids.push(this.idOf.get(ch) ?? UNK_ID);
    return ids;
  }

  /** The text of `ids`; throws RangeError on an id outside [0, vocabSize). */
  decode(ids: Iterable<number>, options: DecodeOptions = {}): string {
    let text = "";
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`decode: id ${id} outside [0, ${this.vocabSize})`);
      }
      if (id >= SPECIAL_TOKENS.length) text += this.chars[id - SPECIAL_TOKENS.length];
      else if (options.showSpecials === true) text += SPECIAL_TOKENS[id];
    }
    return text;
  }

  toJSON(): CharTokenizerJson {
    return { type: "char", version: 1, specials: [...SPECIAL_TOKENS], chars: [...this.chars] };
  }

  /** Rebuild from parsed `tokenizer.json`; throws DataError naming the offending field. */
  static fromJSON(obj: unknown): CharTokenizer {
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw new DataError("tokenizer.json: expected an object");
    }
    const json = obj as Record<string, unknown>;
    if (json.type !== "char") {
      throw new DataError(`tokenizer.json: field "type" must be "char", got ${show(json.type)}`);
    }
    if (json.version !== 1) {
      throw new DataError(`tokenizer.json: field "version" must be 1, got ${show(json.version)}`);
    }
    const specials = stringArray(json.specials, "specials");
    if (specials.join("\n") !== SPECIAL_TOKENS.join("\n")) {
      throw new DataError(
        `tokenizer.json: field "specials" must be ${show(SPECIAL_TOKENS)}, got ${show(specials)}`,
      );
    }
    const chars = stringArray(json.chars, "chars");
    const problem = charsProblem(chars);
    if (problem !== null) throw new DataError(`tokenizer.json: field ${problem}`);
    return new CharTokenizer(chars);
  }
}

/** A tokenizer over every character in `texts`, ids in code-point order after the specials. */
export function buildCharTokenizer(texts: Iterable<string>): CharTokenizer {
  const seen = new Set<string>();
  for (const text of texts) for (const ch of text) seen.add(ch);
  const chars = [...seen].sort((a, b) => codePoint(a) - codePoint(b));
  return new CharTokenizer(chars);
}

/** `n` rounded up to a multiple of `multiple`, for an embedding table that suits the kernels. */
export function paddedVocabSize(n: number, multiple = 8): number {
  return Math.ceil(n / multiple) * multiple;
}

function codePoint(ch: string): number {
  return ch.codePointAt(0) ?? 0;
}

/** What is wrong with a character list (not single code points, duplicates), or null. */
function charsProblem(chars: readonly string[]): string | null {
  const seen = new Set<string>();
  for (const [i, ch] of chars.entries()) {
    if (String.fromCodePoint(codePoint(ch)) !== ch)
      return `"chars[${i}]" must be one character, got ${show(ch)}`;
    if (seen.has(ch)) return `"chars[${i}]" repeats the character ${show(ch)}`;
    seen.add(ch);
  }
  return null;
}

function stringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new DataError(`tokenizer.json: field "${field}" must be an array of strings`);
  }
  return value;
}

function show(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value);
}
