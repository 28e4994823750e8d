// loom's Node-only API (files, the native addon, plots): `import … from "loom/node"`.
export { loadModel, saveModel, type LoadedModel, type SaveOptions } from "./model-io.ts";
export {
  readModelDir,
  writeModelDir,
  readSafetensorsFile,
  writeSafetensorsFile,
  ModelDirError,
} from "./model-dir.ts";
export { loadNativeBackend, selectBackend } from "./native.ts";
export { renderPng, renderSvg, writePng } from "./plot.ts";
