// loom's public API: re-exports only.
export type { Backend, BackendName } from "./backend/backend.ts";
export { backend, useBackend } from "./backend/select.ts";
export { jsBackend } from "./backend/js/index.ts";

export { Tensor, backward, detach, noGrad, parameter, tensor, zeros } from "./tensor/tensor.ts";
export * as ops from "./tensor/ops.ts";
export { Rng } from "./tensor/random.ts";

export {
  type ModelConfig,
  type InjectionType,
  type StateInit,
  huginn0125,
  presets,
  headDim,
  initValues,
} from "./model/config.ts";
export { ConfigError, configFromJson, configToJson, validateConfig } from "./model/config-json.ts";
export { type RavenParams, type BlockParams, initParams } from "./model/params.ts";
export {
  type RavenModel,
  type NumSteps,
  type StateInitOption,
  type ForwardOptions,
  type ForwardOutput,
  createModel,
  initModel,
  embedInputs,
  initializeState,
  iterateOneStep,
  predictFromLatents,
  forward,
} from "./model/model.ts";
export type { KVCache, CachedKV, ForwardContext } from "./model/layers.ts";
export { sequencePlaces, chunkPlaces } from "./model/abacus.ts";
export {
  CheckpointError,
  namedParameters,
  expectedShapes,
  paramsFromStored,
} from "./model/checkpoint.ts";
export { modelStats } from "./model/stats.ts";
export {
  parseSafetensors,
  serializeSafetensors,
  SafetensorsError,
} from "./checkpoint/safetensors.ts";
