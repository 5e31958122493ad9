/**
 * The error every benchmark loader throws for a missing or malformed input file.
 *
 * @module
 */

/**
 * A benchmark file is missing or malformed; the message names the file and the line or key.
 *
 * @example
 * ```ts
 * import { BenchmarkFormatError } from "./errors.ts";
 * const e = new BenchmarkFormatError("test.jsonl:3", "missing field \"options\"");
 * console.log(e.message); // test.jsonl:3: missing field "options"
 * ```
 */
export class BenchmarkFormatError extends Error {
  /** `file:line` or `file#key` the problem is at. */
  readonly where: string;

  /** Creates the error for `where` (file and line or key). */
  constructor(where: string, problem: string) {
    super(`${where}: ${problem}`);
    this.name = "BenchmarkFormatError";
    this.where = where;
  }
}

/**
 * Reads a text file, turning "not found" into a {@linkcode BenchmarkFormatError} naming the path.
 *
 * @example
 * ```ts
 * import { readBenchmarkFile } from "./errors.ts";
 * const text = await readBenchmarkFile("/data/medqa/test.jsonl");
 * ```
 */
export async function readBenchmarkFile(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new BenchmarkFormatError(path, "file not found");
    throw e;
  }
}

/**
 * Splits JSON Lines text into `(line number, parsed value)` pairs, skipping blank lines; a line that is not
 * JSON throws {@linkcode BenchmarkFormatError} naming `file:line`.
 *
 * @example
 * ```ts
 * import { parseJsonLines } from "./errors.ts";
 * parseJsonLines('{"a":1}\n\n{"a":2}\n', "x.jsonl"); // [[1, {a: 1}], [3, {a: 2}]]
 * ```
 */
export function parseJsonLines(text: string, file: string): [number, unknown][] {
  const out: [number, unknown][] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    try {
      out.push([i + 1, JSON.parse(line)]);
    } catch (e) {
      throw new BenchmarkFormatError(`${file}:${i + 1}`, `not valid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

/**
 * Narrows a parsed JSON value to a plain object or throws naming `where`.
 *
 * @example
 * ```ts
 * import { asRecord } from "./errors.ts";
 * asRecord({ a: 1 }, "x.jsonl:1").a; // 1
 * ```
 */
export function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BenchmarkFormatError(
      where,
      `expected a JSON object, got ${JSON.stringify(value)?.slice(0, 40)}`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Reads a string field or throws naming `where` and the field.
 *
 * @example
 * ```ts
 * import { stringField } from "./errors.ts";
 * stringField({ q: "hi" }, "q", "x.jsonl:1"); // "hi"
 * ```
 */
export function stringField(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== "string") {
    throw new BenchmarkFormatError(
      where,
      v === undefined ? `missing field "${key}"` : `field "${key}" is not a string`,
    );
  }
  return v;
}
