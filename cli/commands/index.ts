// Every CLI command, in the order `loom --help` lists them.
import type { Command } from "../command.ts";
import { forwardCommand } from "./forward.ts";
import { generateCommand } from "./generate.ts";
import { infoCommand } from "./info.ts";
import { trainCommand } from "./train.ts";
import { evalCommand } from "./eval.ts";
import { dataCommand } from "./data.ts";
import { demoCommand } from "./demo.ts";
import { traceCommand } from "./trace.ts";
import { serveCommand } from "./serve.ts";
import { benchCommand } from "./bench.ts";

export const commands: Command[] = [
  forwardCommand,
  generateCommand,
  infoCommand,
  trainCommand,
  evalCommand,
  dataCommand,
  demoCommand,
  traceCommand,
  serveCommand,
  benchCommand,
];
