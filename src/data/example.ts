/**
 * A prompt/answer example and its encoding for training with the loss on the answer only:
 * `<bos> prompt <sep> answer <eos>`, next-token labels pre-shifted, everything before the answer
 * masked with IGNORE_INDEX (Huginn's convention).
 */
import { BOS_ID, EOS_ID, SEP_ID, type CharTokenizer } from "./tokenizer.ts";

/** One supervised example; `difficulty` is the task's knob (digits, hops, length) when known. */
export interface Example {
  prompt: string;
  answer: string;
  difficulty?: number;
}

/** `ids` = `<bos> prompt <sep> answer <eos>`; `answerStart` = index of the first answer id. */
export interface EncodedExample {
  ids: number[];
  answerStart: number;
}

/** Label value the loss skips. */
export const IGNORE_INDEX = -100;

/** `<bos> prompt <sep>`: the context a model answers from at evaluation time. */
export function encodePrompt(tok: CharTokenizer, prompt: string): number[] {
  return [BOS_ID, ...tok.encode(prompt), SEP_ID];
}

/** `<bos> prompt <sep> answer <eos>` and where the answer starts. */
export function encodeExample(tok: CharTokenizer, ex: Example): EncodedExample {
  const context = encodePrompt(tok, ex.prompt);
  return { ids: [...context, ...tok.encode(ex.answer), EOS_ID], answerStart: context.length };
}

/**
 * Next-token pairs: `inputs` = ids[:-1], `labels` = ids[1:] with IGNORE_INDEX wherever the
 * target is not an answer token or the final `<eos>`.
 */
export function nextTokenLabels(enc: EncodedExample): { inputs: number[]; labels: number[] } {
  const inputs = enc.ids.slice(0, -1);
  const labels = inputs.map((_, t) => (t + 1 >= enc.answerStart ? enc.ids[t + 1] : IGNORE_INDEX));
  return { inputs, labels };
}
