/**
 * Parquet rows as plain objects, read by `hyparquet` (pure JS, no native code; snappy built in), the format
 * Hugging Face datasets are stored in. 64-bit integers that fit a double become numbers.
 *
 * @example
 * ```ts ignore
 * import { readParquetRows } from "./parquet.ts";
 * const rows = await readParquetRows("validation-00000-of-00001.parquet");
 * console.log(rows[0].question);
 * ```
 *
 * @module
 */

import { parquetReadObjects } from "hyparquet";

/** BigInt → number where exact (recursively through lists and structs). */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

/**
 * Reads every row of a Parquet file (a path, or its bytes) as an object keyed by column name. Throws an error naming the
 * file when it is not Parquet.
 *
 * @example
 * ```ts ignore
 * import { readParquetRows } from "./parquet.ts";
 * const rows = await readParquetRows(await Deno.readFile("test.parquet"), "test.parquet");
 * ```
 */
export async function readParquetRows(
  source: string | Uint8Array | ArrayBuffer,
  name: string = typeof source === "string" ? source : "parquet",
): Promise<Record<string, unknown>[]> {
  const bytes = typeof source === "string" ? await Deno.readFile(source) : source;
  const file = bytes instanceof ArrayBuffer
    ? bytes
    : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  try {
    const rows = await parquetReadObjects({ file });
    return rows.map((r) => plain(r) as Record<string, unknown>);
  } catch (e) {
    throw new Error(`${name}: not a readable Parquet file (${(e as Error).message})`);
  }
}
