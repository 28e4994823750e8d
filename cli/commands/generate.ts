// `loom generate`: new tokens with per-token adaptive compute; optionally streamed with each
// token's recurrence count, and written as {"outputs": [{tokens, steps, text?}]}.
import { writeFileSync } from "node:fs";
import { CharTokenizer, EOS_ID } from "../../src/data/tokenizer.ts";
import { exitNames, type ExitName } from "../../src/generate/exit.ts";
import { type GenerateOptions, type TokenRecord, generate } from "../../src/generate/generate.ts";
import { generateDiffusion } from "../../src/generate/diffusion.ts";
import { generateSpeculative } from "../../src/generate/speculative.ts";
import type { RavenModel } from "../../src/model/model.ts";
import { lookupStrategies, type LookupStrategy } from "../../src/generate/kv-cache.ts";
import type { SamplingOptions } from "../../src/generate/sampling.ts";
import { loadModel } from "../../src/node/model-io.ts";
import { CliError, type Flags, bool, need, num, str } from "../args.ts";
import type { Command } from "../command.ts";
import { PROMPT_FRAME_FLAGS, promptRows } from "../io.ts";

const CMD = "generate";

export const generateCommand: Command = {
  name: CMD,
  summary: "generate tokens with per-token adaptive recurrence; stream or write JSON",
  usage:
    "loom generate --model DIR (--tokens FILE.json | --prompt TEXT [--bos --sep]) --max-new-tokens N --steps R [--exit CRITERION] [--exit-threshold X] [--init-state zero|random] [--seed S] [--greedy | --temperature T --top-k K --top-p P --min-p M] [--warm-start] [--stream] [--json OUT.json]",
  flags: {
    model: { type: "string", help: "model directory (config.json + safetensors)", required: true },
    tokens: { type: "string", help: "JSON array of token-id arrays, one prompt per row" },
    prompt: { type: "string", help: "prompt text (needs the model's tokenizer.json)" },
    ...PROMPT_FRAME_FLAGS,
    "max-new-tokens": { type: "int", help: "new tokens per prompt", required: true },
    steps: { type: "int", help: "recurrences per token (the maximum with --exit)", required: true },
    exit: {
      type: "string",
      help: "per-token exit criterion",
      choices: exitNames,
      default: "none",
    },
    "exit-threshold": { type: "number", help: "exit threshold (default: the reference's)" },
    "min-steps": { type: "int", help: "no exit before this many recurrences", default: 0 },
    "check-every": { type: "int", help: "check the exit criterion every n steps", default: 1 },
    "init-state": {
      type: "string",
      help: "s_0 of each token: zero, or random (the config's state_init)",
      choices: ["zero", "random"],
      default: "random",
    },
    seed: { type: "int", help: "seed of noise and sampling (row b uses seed + b)", default: 0 },
    greedy: { type: "boolean", help: "argmax decoding (the default)" },
    temperature: { type: "number", help: "sample with this temperature" },
    "top-k": { type: "int", help: "sample from the k most probable tokens" },
    "top-p": { type: "number", help: "nucleus sampling" },
    "min-p": { type: "number", help: "drop tokens below min-p · max prob" },
    "repetition-penalty": { type: "number", help: "HF repetition penalty (1 = off)" },
    "warm-start": {
      type: "boolean",
      help: "continuous CoT: start each token from the previous token's final state",
      default: false,
    },
    lookup: {
      type: "string",
      help: "KV lookup for tokens that exited earlier",
      choices: lookupStrategies,
      default: "full",
    },
    "share-budget": { type: "int", help: "KV sharing: K iterations reused modulo K" },
    sampler: {
      type: "string",
      help: "decoder: plain (one token per pass), speculative (draft with fewer recurrences, verify in one pass) or diffusion (parallel wavefront)",
      choices: ["plain", "speculative", "diffusion"],
      default: "plain",
    },
    "draft-steps": { type: "int", help: "speculative: recurrences of the drafts", default: 4 },
    lookahead: { type: "int", help: "speculative: drafted tokens per round", default: 8 },
    "verification-threshold": {
      type: "number",
      help: "speculative: 1 = the verifier's argmax must equal the draft; < 1 = its probability ≥ threshold · max",
      default: 1,
    },
    "inner-recurrence": { type: "int", help: "diffusion: core steps per outer step", default: 4 },
    headway: { type: "int", help: "diffusion: new positions per outer step", default: 1 },
    "freeze-threshold": {
      type: "number",
      help: "diffusion: freeze a position below this relative latent change",
      default: 0.03,
    },
    stream: { type: "boolean", help: "print tokens as produced, each with its step count" },
    json: { type: "string", help: "write {outputs: [{tokens, steps, text}]} here" },
  },
  async run({ flags }) {
    const dir = need(CMD, flags, "model");
    const { model, tokenizer: tokJson } = loadModel(dir);
    const tok = tokJson === null ? null : CharTokenizer.fromJSON(tokJson);
    const prompts = promptRows(CMD, flags, tok, dir);
    const o = optionsOf(flags);
    const sampler = str(flags, "sampler") ?? "plain";
    if (sampler !== "plain") {
      report(
        flags,
        tok,
        prompts.map((p) => parallelDecode(model, p, o, flags, sampler)),
      );
      return;
    }
    const outputs = prompts.map((): { tokens: number[]; steps: number[] } => ({
      tokens: [],
      steps: [],
    }));
    const stream = bool(flags, "stream");
    const show = streamer(tok, prompts.length);
    try {
      for await (const r of generate(model, prompts, o)) {
        outputs[r.row].tokens.push(r.token);
        outputs[r.row].steps.push(r.steps);
        if (stream) {
          process.stdout.write(show(r));
          await new Promise((resolve) => setImmediate(resolve)); // let the terminal draw it
        }
      }
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("generate: "))
        throw new CliError(`loom generate: ${err.message.slice(10)}`);
      throw err;
    }
    if (stream) process.stdout.write("\n");
    report(flags, tok, outputs, !stream);
  },
};

interface Output {
  tokens: number[];
  steps: number[];
}

/** Write {outputs} to --json (or stdout) and a one-line summary to stderr. */
function report(flags: Flags, tok: CharTokenizer | null, outputs: Output[], print = true): void {
  const result = {
    outputs: outputs.map((x) => (tok ? { ...x, text: decodeSafe(tok, x.tokens) } : x)),
  };
  const out = str(flags, "json");
  if (out !== undefined) writeFileSync(out, JSON.stringify(result) + "\n");
  else if (print) console.log(JSON.stringify(result));
  const all = outputs.flatMap((x) => x.steps);
  const mean = all.reduce((a, b) => a + b, 0) / Math.max(1, all.length);
  console.error(`loom generate: ${all.length} tokens, mean recurrences ${mean.toFixed(2)}`);
}

/**
 * One prompt through the speculative or the diffusion decoder (batch 1 each). `steps` holds the
 * prefill's count first, then the recurrences each new token's position received.
 */
function parallelDecode(
  model: RavenModel,
  prompt: number[],
  o: GenerateOptions,
  flags: Flags,
  sampler: string,
): Output {
  if (o.exit !== "none" || o.warmStart) {
    throw new CliError("loom generate: --exit and --warm-start work with --sampler plain only");
  }
  const common = {
    maxNewTokens: o.maxNewTokens,
    numSteps: o.numSteps,
    init: o.init ?? "random",
    seed: o.seed ?? 0,
    sampling: o.sampling ?? { greedy: true },
    ...(o.stopTokens ? { stopTokens: o.stopTokens } : {}),
  };
  if (sampler === "speculative") {
    const r = generateSpeculative(model, prompt, {
      ...common,
      draftSteps: num(flags, "draft-steps") ?? 4,
      lookahead: num(flags, "lookahead") ?? 8,
      verificationThreshold: num(flags, "verification-threshold") ?? 1,
      ...(o.lookup ? { lookup: o.lookup } : {}),
      ...(o.sharing ? { sharing: o.sharing } : {}),
    });
    console.error(
      `loom generate: speculative, ${r.accepted}/${r.drafted} drafts accepted in ${r.rounds} rounds`,
    );
    return { tokens: r.tokens, steps: r.tokens.map(() => o.numSteps) };
  }
  const r = generateDiffusion(model, prompt, {
    ...common,
    innerRecurrence: num(flags, "inner-recurrence") ?? 4,
    headway: num(flags, "headway") ?? 1,
    exitThreshold: num(flags, "freeze-threshold") ?? 0.03,
    ...(o.sharing ? { sharing: o.sharing } : {}),
  });
  console.error(`loom generate: diffusion, ${r.tokens.length} tokens in ${r.outerSteps} passes`);
  return { tokens: r.tokens, steps: [o.numSteps, ...r.iterations.slice(0, r.tokens.length - 1)] };
}

function optionsOf(flags: Flags): GenerateOptions {
  const exit = (str(flags, "exit") ?? "none") as ExitName;
  const threshold = num(flags, "exit-threshold");
  if (threshold !== undefined && exit === "none")
    throw new CliError("loom generate: --exit-threshold needs --exit");
  const budget = num(flags, "share-budget");
  if (budget === 0) throw new CliError("loom generate: --share-budget must be >= 1");
  return {
    maxNewTokens: num(flags, "max-new-tokens") ?? 0,
    ...(bool(flags, "sep") ? { stopTokens: [EOS_ID] } : {}), // the end of a trained answer
    numSteps: num(flags, "steps") ?? 0,
    exit,
    ...(threshold !== undefined ? { exitThreshold: threshold } : {}),
    minSteps: num(flags, "min-steps") ?? 0,
    checkEvery: Math.max(1, num(flags, "check-every") ?? 1),
    init: str(flags, "init-state") === "zero" ? "zero" : "random",
    seed: num(flags, "seed") ?? 0,
    warmStart: bool(flags, "warm-start"),
    sampling: samplingOf(flags),
    lookup: (str(flags, "lookup") ?? "full") as LookupStrategy,
    ...(budget !== undefined ? { sharing: { kind: "modulo", budget } } : {}),
  };
}

function samplingOf(flags: Flags): SamplingOptions {
  const t = num(flags, "temperature");
  const k = num(flags, "top-k");
  const p = num(flags, "top-p");
  const mp = num(flags, "min-p");
  const rp = num(flags, "repetition-penalty");
  const sampled = [t, k, p, mp].some((x) => x !== undefined);
  if (sampled && bool(flags, "greedy"))
    throw new CliError("loom generate: --greedy excludes --temperature/--top-k/--top-p/--min-p");
  const bad = (msg: string): never => {
    throw new CliError(`loom generate: ${msg}`);
  };
  if (t !== undefined && !(t > 0)) bad("--temperature must be > 0");
  if (p !== undefined && !(p > 0 && p <= 1)) bad("--top-p must be in (0, 1]");
  if (mp !== undefined && !(mp >= 0 && mp <= 1)) bad("--min-p must be in [0, 1]");
  if (rp !== undefined && !(rp > 0)) bad("--repetition-penalty must be > 0");
  return {
    greedy: !sampled,
    ...(t !== undefined ? { temperature: t } : {}),
    ...(k !== undefined ? { topK: k } : {}),
    ...(p !== undefined ? { topP: p } : {}),
    ...(mp !== undefined ? { minP: mp } : {}),
    ...(rp !== undefined ? { repetitionPenalty: rp } : {}),
  };
}

/**
 * How a streamed token looks: its text (or id) with its recurrence count as a subscript; on a
 * terminal the token is also coloured from green (few steps) to red (many). Batches print one
 * line per token, prefixed by the row.
 */
function streamer(tok: CharTokenizer | null, rows: number): (r: TokenRecord) => string {
  const colour = process.stdout.isTTY && process.env.NO_COLOR === undefined;
  const sub = (n: number): string =>
    String(n).replace(/\d/g, (d) => String.fromCharCode(0x2080 + Number(d)));
  let maxSteps = 1;
  return (r) => {
    maxSteps = Math.max(maxSteps, r.steps);
    const body = tok ? decodeSafe(tok, [r.token]) : `${r.token} `;
    const text = `${body}${sub(r.steps)}`;
    const hue = Math.round((5 * r.steps) / maxSteps); // 0 … 5
    const painted = colour ? `\x1b[38;5;${46 + 36 * hue - 6 * hue}m${text}\x1b[0m` : text;
    return rows > 1 ? `[${r.row}] ${painted}\n` : painted;
  };
}

/** Text of ids; ids the tokenizer lacks (the model's vocab may be padded) show as <id>. */
function decodeSafe(tok: CharTokenizer, ids: readonly number[]): string {
  return ids.map((id) => (id < tok.vocabSize ? tok.decode([id]) : `<${id}>`)).join("");
}
