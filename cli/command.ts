// What a CLI command is: a name, a one-line summary, a usage line, its flags and its run().
import type { FlagSpecs, ParsedArgs } from "./args.ts";

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpecs;
  /** Whether undeclared `--key value` pairs are collected as overrides (e.g. config fields). */
  allowOverrides?: boolean;
  /** A bare first argument fills this flag (`loom serve DIR` = `loom serve --dir DIR`). */
  positional?: string;
  run(args: ParsedArgs): Promise<void>;
}
