// Which backend the ops run on. The pure-TypeScript backend is the default everywhere; in Node,
// `src/node/native.ts` swaps in the native addon when it loads (LOOM_BACKEND=js|native overrides).
import type { Backend } from "./backend.ts";
import { jsBackend } from "./js/index.ts";

let active: Backend = jsBackend;

export function backend(): Backend {
  return active;
}

export function useBackend(b: Backend): void {
  active = b;
}
