// File helpers shared by the commands: JSON token files, errors that name the file.
import { readFileSync } from "node:fs";
import { CliError } from "./args.ts";

export function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new CliError(`cannot read ${what} ${path}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** A JSON array of token-id arrays. `equalLength`: rows must form a (B, T) batch. */
export function readTokenRows(path: string, equalLength: boolean): number[][] {
  const json = readJson(path, "token file");
  if (!Array.isArray(json) || json.length === 0) {
    throw new CliError(`${path}: expected a non-empty JSON array of token-id arrays`);
  }
  return json
    .map((row: unknown, i) => {
      if (!Array.isArray(row) || row.length === 0)
        throw new CliError(`${path}: row ${i} is not a non-empty array`);
      return row.map((id: unknown, j) => {
        if (typeof id !== "number" || !Number.isInteger(id)) {
          throw new CliError(
            `${path}: row ${i}, item ${j}: ${JSON.stringify(id)} is not an integer token id`,
          );
        }
        return id;
      });
    })
    .map((row, i, rows) => {
      if (equalLength && row.length !== rows[0].length) {
        throw new CliError(
          `${path}: row ${i} has ${row.length} tokens, row 0 has ${rows[0].length}`,
        );
      }
      return row;
    });
}
