/**
 * Load and save a loom/Huginn model directory (config.json + safetensors) as a RavenModel.
 * The tokenizer, when the directory has one (`tokenizer.json`), travels along as raw JSON.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { WriteDtype } from "../checkpoint/safetensors.ts";
import { namedParameters, paramsFromStored } from "../model/checkpoint.ts";
import { configFromJson, configToJson } from "../model/config-json.ts";
import { type RavenModel, createModel } from "../model/model.ts";
import { ModelDirError, readModelDir, writeModelDir } from "./model-dir.ts";

export interface LoadedModel {
  model: RavenModel;
  /** Parsed tokenizer.json of the directory, if any. */
  tokenizer: unknown;
}

export function loadModel(dir: string): LoadedModel {
  const stored = readModelDir(dir);
  const config = configFromJson(stored.config, join(dir, "config.json"));
  const params = paramsFromStored(
    config,
    {
      keys: () => stored.tensors.keys(),
      shape: (k) => stored.tensors.get(k)?.shape,
      float32: (k) => {
        const t = stored.tensors.get(k);
        if (t === undefined) throw new Error(`${dir}: missing tensor ${k}`);
        return t.float32();
      },
    },
    dir,
  );
  const tokPath = join(dir, "tokenizer.json");
  const tokenizer = existsSync(tokPath) ? readTokenizerJson(tokPath) : null;
  return { model: createModel(config, params), tokenizer };
}

export interface SaveOptions {
  dtype?: WriteDtype; // F32 (default) or BF16
  extraFiles?: Record<string, string | Uint8Array>;
}

/** Write config.json + model.safetensors (atomically), with the reference's key names. */
export function saveModel(dir: string, model: RavenModel, opts: SaveOptions = {}): void {
  const tensors = namedParameters(model.params).map(([name, t]) => ({
    name,
    shape: [...t.shape],
    data: t.data,
    dtype: opts.dtype ?? "F32",
  }));
  writeModelDir(dir, configToJson(model.config), tensors, { extraFiles: opts.extraFiles ?? {} });
}

function readTokenizerJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ModelDirError(`${path}: invalid JSON (${(err as Error).message})`);
  }
}
