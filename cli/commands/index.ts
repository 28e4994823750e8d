// Every CLI command, in the order `loom --help` lists them.
import type { Command } from "../command.ts";
import { forwardCommand } from "./forward.ts";
import { infoCommand } from "./info.ts";

export const commands: Command[] = [forwardCommand, infoCommand];
