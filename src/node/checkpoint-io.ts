/**
 * Training checkpoints on disk: a Huginn model directory (config.json, model.safetensors,
 * tokenizer.json) plus `optimizer.safetensors` (the moments, `m.<key>` / `v.<key>`) and
 * `trainer-state.json` (step, seed, schedule length, recipe, data source, elapsed time). Any
 * directory written here loads with `loadModel` as a plain model.
 *
 * Atomicity: the whole checkpoint is first written as a complete sibling directory `DIR.next`,
 * then swapped in with two renames (DIR -> DIR.prev, DIR.next -> DIR) and DIR.prev is removed.
 * A crash at any point leaves a complete checkpoint at DIR, or (between the renames) at DIR.prev
 * or DIR.next, which `recoverCheckpointDir` moves back to DIR. Files in DIR that loom did not
 * write (metrics.jsonl, plots, notes) are carried over into the new version.
 */
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { serializeSafetensors } from "../checkpoint/safetensors.ts";
import { namedParameters } from "../model/checkpoint.ts";
import { configToJson } from "../model/config-json.ts";
import type { RavenModel } from "../model/model.ts";
import {
  type OptimizerState,
  optimizerStateFromTensors,
  optimizerStateToTensors,
} from "../train/optim.ts";
import { trainableParams } from "../train/trainer.ts";
import { ModelDirError, readSafetensorsFile, writeModelDir } from "./model-dir.ts";
import { loadModel } from "./model-io.ts";

export const TRAINER_STATE = "trainer-state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
const LOOM_FILES = new Set([
  "config.json",
  "model.safetensors",
  "model.safetensors.index.json",
  "tokenizer.json",
  OPTIMIZER_FILE,
  TRAINER_STATE,
]);

/** trainer-state.json: what a resumed run needs besides weights and moments. */
export interface TrainerStateJson {
  version: 1;
  step: number;
  totalSteps: number;
  seed: number;
  tokens: number;
  /** Seconds of training so far (for the time budget of a resumed run). */
  elapsedSeconds: number;
  /** The recipe, as a plain object (see src/train/recipe.ts). */
  recipe: Record<string, unknown>;
  /** Where the data came from, enough to rebuild it: {kind: "task"|"jsonl"|"text", …}. */
  data: Record<string, unknown>;
  /** Time budget of the run in seconds, if any. */
  timeBudgetSeconds: number | null;
  /** Steps the run takes even past its time budget (`loom train --min-steps`); 0: none. */
  minSteps?: number;
  /** Whether training reached its end (step >= totalSteps). */
  finished: boolean;
  /**
   * RNG state: every random draw of a step (depth, batch, initial state) is derived from
   * (seed, step), so the generator state at a step boundary is fully described by them.
   */
  rng: { scheme: "seed-step"; seed: number; step: number };
}

export interface RunCheckpoint {
  model: RavenModel;
  opt: OptimizerState;
  tokenizer: unknown;
  state: TrainerStateJson;
}

/** Write (or replace) the checkpoint at `dir` atomically (see the top of this file). */
export function saveCheckpoint(dir: string, ck: RunCheckpoint): void {
  const target = resolve(dir);
  const next = `${target}.next`;
  const prev = `${target}.prev`;
  rmSync(next, { recursive: true, force: true });
  const params = trainableParams(ck.model);
  const serialized = optimizerStateToTensors(ck.opt, params);
  const optBytes = serializeSafetensors(
    serialized.tensors.map((t) => ({ name: t.name, shape: t.shape, data: t.data })),
    { format: "loom-optimizer", step: String(serialized.step) },
  );
  const tensors = namedParameters(ck.model.params).map(([name, t]) => ({
    name,
    shape: [...t.shape],
    data: t.data,
  }));
  writeModelDir(next, configToJson(ck.model.config), tensors, {
    metadata: { format: "pt", step: String(ck.state.step) },
    extraFiles: {
      "tokenizer.json": `${JSON.stringify(ck.tokenizer, null, 2)}\n`,
      [OPTIMIZER_FILE]: optBytes,
      [TRAINER_STATE]: `${JSON.stringify(ck.state, null, 2)}\n`,
    },
  });
  if (existsSync(target)) {
    for (const name of readdirSync(target)) {
      if (!LOOM_FILES.has(name) && !name.endsWith(".safetensors")) {
        cpSync(join(target, name), join(next, name), { recursive: true });
      }
    }
    rmSync(prev, { recursive: true, force: true });
    renameSync(target, prev);
  }
  renameSync(next, target);
  rmSync(prev, { recursive: true, force: true });
}

/**
 * If `dir` is missing because a save was interrupted between its two renames, move the complete
 * copy (DIR.next, else DIR.prev) back to `dir`. Returns whether anything was recovered.
 */
export function recoverCheckpointDir(dir: string): boolean {
  const target = resolve(dir);
  if (existsSync(target)) return false;
  for (const candidate of [`${target}.next`, `${target}.prev`]) {
    if (existsSync(join(candidate, TRAINER_STATE)) && existsSync(join(candidate, "config.json"))) {
      renameSync(candidate, target);
      return true;
    }
  }
  return false;
}

/** Whether `dir` holds a training checkpoint (trainer-state.json). */
export function isCheckpoint(dir: string): boolean {
  return existsSync(join(dir, TRAINER_STATE));
}

/** Load a checkpoint written by `saveCheckpoint`; errors name the file and the problem. */
export function loadCheckpoint(dir: string): RunCheckpoint {
  recoverCheckpointDir(dir);
  const statePath = join(dir, TRAINER_STATE);
  if (!existsSync(statePath)) {
    throw new ModelDirError(
      `${dir}: no ${TRAINER_STATE} (not a loom training run; train with --out ${basename(dir)})`,
    );
  }
  const state = parseTrainerState(readFileSync(statePath, "utf8"), statePath);
  const { model, tokenizer } = loadModel(dir);
  const optPath = join(dir, OPTIMIZER_FILE);
  if (!existsSync(optPath)) throw new ModelDirError(`${optPath}: missing (cannot resume)`);
  const file = readSafetensorsFile(optPath);
  const step = Number(file.metadata.step);
  const tensors = [...file.tensors].map(([name, t]) => ({
    name,
    shape: t.shape,
    data: t.float32(),
  }));
  let opt: OptimizerState;
  try {
    opt = optimizerStateFromTensors({ step, tensors }, trainableParams(model));
  } catch (e) {
    throw new ModelDirError(`${optPath}: ${(e as Error).message}`);
  }
  return { model, opt, tokenizer, state };
}

function parseTrainerState(text: string, path: string): TrainerStateJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelDirError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null) throw new ModelDirError(`${path}: not an object`);
  const o = json as Record<string, unknown>;
  for (const field of ["step", "totalSteps", "seed", "tokens", "elapsedSeconds"]) {
    if (typeof o[field] !== "number") {
      throw new ModelDirError(`${path}: field "${field}" must be a number`);
    }
  }
  for (const field of ["recipe", "data"]) {
    if (typeof o[field] !== "object" || o[field] === null) {
      throw new ModelDirError(`${path}: field "${field}" must be an object`);
    }
  }
  return json as TrainerStateJson;
}
