/**
 * Flags for the CLI: each command declares its flags with a type, a default and a help line;
 * `parseFlags` turns argv into a typed object or throws a CliError naming the offending flag.
 * Accepted forms: `--name value`, `--name=value`, `--flag` / `--no-flag` for booleans.
 */

export type FlagType = "string" | "number" | "int" | "boolean" | "list";
type FlagValue = string | number | boolean | number[] | undefined;

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean | number[];
  required?: boolean;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
}

export type FlagSpecs = Record<string, FlagSpec>;

/** The parsed value of each flag (undefined when absent and without default). */
export type Flags = Record<string, FlagValue>;

export class CliError extends Error {
  override name = "CliError";
}

export interface ParsedArgs {
  flags: Flags;
  /** `--key value` pairs not declared by the command (only when it accepts overrides). */
  overrides: Record<string, string>;
}

export function parseFlags(
  cmd: string,
  specs: FlagSpecs,
  argv: string[],
  allowOverrides = false,
): ParsedArgs {
  const flags: Flags = {};
  const overrides: Record<string, string> = {};
  const lookup = (n: string): FlagSpec | undefined =>
    Object.hasOwn(specs, n) ? specs[n] : undefined;
  const next = (i: number): string | undefined => (i < argv.length ? argv[i] : undefined);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new CliError(`loom ${cmd}: unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    let name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
    let spec = lookup(name);
    if (spec === undefined && name.startsWith("no-") && lookup(name.slice(3))?.type === "boolean") {
      name = name.slice(3);
      spec = lookup(name);
      inline = "false";
    }
    if (spec === undefined) {
      if (!allowOverrides)
        throw new CliError(`loom ${cmd}: unknown flag --${name} (see loom ${cmd} --help)`);
      const value = inline ?? next(++i);
      if (value === undefined) throw new CliError(`loom ${cmd}: --${name} needs a value`);
      overrides[name] = value;
      continue;
    }
    if (spec.type === "boolean") {
      flags[name] = parseBool(cmd, name, inline ?? "true");
      continue;
    }
    const value = inline ?? next(++i);
    if (value === undefined || (inline === undefined && value.startsWith("--"))) {
      throw new CliError(`loom ${cmd}: --${name} needs a value`);
    }
    flags[name] = parseValue(cmd, name, spec, value);
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (flags[name] !== undefined) continue;
    if (spec.required) throw new CliError(`loom ${cmd}: missing required flag --${name}`);
    flags[name] = spec.default;
  }
  return { flags, overrides };
}

function parseBool(cmd: string, name: string, v: string): boolean {
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new CliError(`loom ${cmd}: --${name} takes true or false, got "${v}"`);
}

function parseValue(cmd: string, name: string, spec: FlagSpec, v: string): FlagValue {
  const bad = (what: string): never => {
    throw new CliError(`loom ${cmd}: --${name} must be ${what}, got "${v}"`);
  };
  switch (spec.type) {
    case "string":
      if (spec.choices && !spec.choices.includes(v)) bad(`one of ${spec.choices.join("|")}`);
      return v;
    case "number": {
      const n = Number(v);
      return v.trim() !== "" && Number.isFinite(n) ? n : bad("a number");
    }
    case "int": {
      const n = Number(v);
      return Number.isInteger(n) && n >= 0 ? n : bad("a non-negative integer");
    }
    case "list": {
      const parts = v.split(",").map((s) => Number(s.trim()));
      return parts.length > 0 && parts.every((n) => Number.isInteger(n) && n >= 0)
        ? parts
        : bad("a comma-separated list of non-negative integers");
    }
    case "boolean":
      return parseBool(cmd, name, v);
    default:
      return spec.type satisfies never;
  }
}

/** Typed readers for a parsed flag (the spec guarantees the type; these narrow it). */
export const str = (f: Flags, name: string): string | undefined => f[name] as string | undefined;
export const num = (f: Flags, name: string): number | undefined => f[name] as number | undefined;
export const bool = (f: Flags, name: string): boolean => f[name] === true;
export const list = (f: Flags, name: string): number[] | undefined =>
  f[name] as number[] | undefined;

/** Required string flag (declared without a default): throws a CliError naming it if absent. */
export function need(cmd: string, f: Flags, name: string): string {
  const v = f[name];
  if (typeof v !== "string") throw new CliError(`loom ${cmd}: missing required flag --${name}`);
  return v;
}

/** Help text: usage line, then every flag with its type, default and help. */
export function formatHelp(cmd: string, usage: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const kind = s.type === "boolean" ? "" : ` <${s.choices ? s.choices.join("|") : s.type}>`;
    const dflt = s.required
      ? " (required)"
      : s.default !== undefined
        ? ` (default: ${String(s.default)})`
        : "";
    return `  --${name}${kind}\n      ${s.help}${dflt}`;
  });
  return [`loom ${cmd}: ${summary}`, "", `usage: ${usage}`, "", "flags:", ...rows].join("\n");
}
