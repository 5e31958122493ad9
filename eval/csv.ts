/**
 * A small RFC 4180 CSV reader (quoted fields, `""` escapes, commas and newlines inside quotes), enough for
 * MMLU's headerless files.
 *
 * @module
 */

import { BenchmarkFormatError } from "./errors.ts";

/**
 * One CSV record with the 1-based line it starts on.
 *
 * @example
 * ```ts
 * import type { CsvRecord } from "./csv.ts";
 * const r: CsvRecord = { line: 1, fields: ["a", "b"] };
 * ```
 */
export interface CsvRecord {
  /** Line the record starts on (1-based). */
  line: number;
  /** Field values, unquoted. */
  fields: string[];
}

/**
 * Parses CSV text into records; blank lines are skipped; an unterminated quote throws
 * {@linkcode BenchmarkFormatError} naming `file:line`.
 *
 * @example
 * ```ts
 * import { parseCsv } from "./csv.ts";
 * parseCsv('"a, b",c\n"say ""hi""",d\n', "x.csv").map((r) => r.fields); // [["a, b", "c"], ['say "hi"', "d"]]
 * ```
 */
export function parseCsv(text: string, file: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1, start = 1;
  let inQuotes = false, quoteLine = 0, any = false;
  const endRecord = () => {
    fields.push(field);
    if (any || fields.length > 1 || field !== "") out.push({ line: start, fields });
    fields = [];
    field = "";
    any = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (ch === "\n") line++;
        field += ch;
      }
    } else if (ch === '"') {
      inQuotes = true;
      any = true;
      quoteLine = line;
    } else if (ch === ",") {
      fields.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      start = line;
    } else field += ch;
  }
  if (inQuotes) throw new BenchmarkFormatError(`${file}:${quoteLine}`, "unterminated quoted field");
  if (field !== "" || fields.length > 0 || any) endRecord();
  return out;
}
