/**
 * `loom <command> [flags]`. Dispatch only: each command lives in cli/commands/<name>.ts.
 * Errors the user can fix (a flag, a file, a config field) print one line and exit 2.
 */
import { selectBackend } from "../src/node/native.ts";
import { CliError, formatHelp, parseFlags } from "./args.ts";
import { commands } from "./commands/index.ts";

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const rows = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "loom: recurrent-depth latent-reasoning language models (Huginn, arXiv 2502.05171)",
    "",
    "usage: loom <command> [flags]      loom <command> --help",
    "",
    "commands:",
    ...rows,
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    console.log(usage());
    return 2;
  }
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (cmd === undefined) {
    console.error(
      `loom: unknown command "${name}" (commands: ${commands.map((c) => c.name).join(", ")})`,
    );
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(formatHelp(cmd.name, cmd.usage, cmd.summary, cmd.flags));
    return 0;
  }
  try {
    useBestBackend();
    const bare = cmd.positional !== undefined && rest.length > 0 && !rest[0].startsWith("-");
    const args = bare ? [`--${cmd.positional ?? ""}`, ...rest] : rest;
    await cmd.run(parseFlags(cmd.name, cmd.flags, args, cmd.allowOverrides ?? false));
    return 0;
  } catch (err) {
    if (err instanceof Error && isUserError(err)) {
      console.error(
        err.message.startsWith("loom") ? err.message : `loom ${cmd.name}: ${err.message}`,
      );
      return 2;
    }
    throw err;
  }
}

/** Native when it loads, else TypeScript; LOOM_BACKEND=js|native overrides (a bad value is the user's). */
function useBestBackend(): void {
  try {
    selectBackend();
  } catch (err) {
    throw new CliError(`loom: ${(err as Error).message}`);
  }
}

/** Errors about the user's input: a flag, a file or its content. Others are bugs: full stack. */
function isUserError(err: Error): boolean {
  const userErrors = [
    "CliError",
    "ConfigError",
    "SafetensorsError",
    "ModelDirError",
    "CheckpointError",
    "DataError",
  ];
  return userErrors.includes(err.name) || "code" in err; // fs errors (ENOENT, EACCES, …)
}

export { CliError };
