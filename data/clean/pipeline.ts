/**
 * The contract between sources and the cleaning driver: a {@linkcode RecordCleaner} turns one input record
 * into an output record or a drop reason, and {@linkcode runCleaner} applies one to in-memory records
 * (notebooks, tests); the streaming file driver is `clean_file.ts`.
 *
 * @module
 */
import { CleanCounts, type DropReason } from "./filters.ts";
import { JsonlError, type JsonObject } from "./jsonl.ts";

/** Cleans records of one source. Stateful: dedup sets grow with every kept record. */
export interface RecordCleaner {
  /**
   * The cleaned record to write, or the reason to drop it. A record that lacks a required field throws a
   * {@linkcode JsonlError} naming `file:line` and the field.
   */
  clean(record: JsonObject, file: string, line: number): JsonObject | DropReason;
}

/** Kept documents and counts of an in-memory cleaning run. */
export interface CleanResult {
  /** Cleaned records, in input order. */
  docs: JsonObject[];
  /** Read, kept and dropped counts. */
  counts: CleanCounts;
}

/** Options of {@linkcode runCleaner}. */
export interface RunOptions {
  /** Name used as the "file" in error messages (default `input`). */
  name?: string;
  /** Count records that lack a required field (`missing_field`) or are malformed (`bad_line`) instead of throwing. */
  skipBad?: boolean;
}

/**
 * Applies a cleaner to in-memory records.
 *
 * @example
 * ```ts
 * import { runCleaner } from "./pipeline.ts";
 * const upper = { clean: (r: Record<string, unknown>) => ({ ...r, text: String(r.text).toUpperCase() }) };
 * console.log(runCleaner([{ text: "a" }], upper).docs); // [ { text: "A" } ]
 * ```
 */
export function runCleaner(
  records: Iterable<JsonObject>,
  cleaner: RecordCleaner,
  options: RunOptions = {},
): CleanResult {
  const counts = new CleanCounts();
  const docs: JsonObject[] = [];
  let line = 0;
  for (const record of records) {
    line++;
    counts.read++;
    let out: JsonObject | DropReason;
    try {
      out = cleaner.clean(record, options.name ?? "input", line);
    } catch (e) {
      if (!(e instanceof JsonlError) || !options.skipBad) throw e;
      counts.drop(e.kind);
      continue;
    }
    if (typeof out === "string") counts.drop(out);
    else {
      docs.push(out);
      counts.kept++;
    }
  }
  return { docs, counts };
}
