// Loaded before every test file (scripts/run-tests.js): run the suites on the backend the CLI
// would pick (native when built; LOOM_BACKEND=js|native forces one), and say which.
import { selectBackend } from "../src/node/native.ts";

const b = selectBackend();
console.log(`# backend: ${b.name}, ${b.threads} thread(s)`);
