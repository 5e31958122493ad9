/**
 * Streaming JSON Lines for the cleaning pipeline: a chunked line reader (a multi-GB file is never held in
 * memory), record parsing whose errors name the file and line, and an atomic writer (temporary file in the
 * same directory, fsync, rename; removed on failure) so that an output is either complete or absent.
 *
 * @module
 */

/** A JSON object as read from one JSONL line. */
export type JsonObject = Record<string, unknown>;

/**
 * A malformed or unusable input line; the message starts with `file:line:`. `kind` says how `--skip-bad`
 * counts it: `bad_line` (not a JSON object, or malformed content) or `missing_field`.
 */
export class JsonlError extends Error {
  /** File that holds the line. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** How a skipped line is counted. */
  readonly kind: "bad_line" | "missing_field";

  /**
   * Builds `file:line: reason`.
   *
   * @example
   * ```ts
   * import { JsonlError } from "./jsonl.ts";
   * console.log(new JsonlError("a.jsonl", 3, "malformed JSON").message); // a.jsonl:3: malformed JSON
   * ```
   */
  constructor(file: string, line: number, reason: string, kind: "bad_line" | "missing_field" = "bad_line") {
    super(`${file}:${line}: ${reason}`);
    this.name = "JsonlError";
    this.file = file;
    this.line = line;
    this.kind = kind;
  }
}

/** One non-blank line of a JSONL file. */
export interface JsonlLine {
  /** The line without its terminator (`\n` or `\r\n`). */
  text: string;
  /** 1-based line number. */
  line: number;
}

/**
 * Reads a file line by line in fixed-size chunks, skipping blank lines. `bytesRead` grows as the file is
 * consumed (for MB/s reporting).
 *
 * @example
 * ```ts
 * import { JsonlReader } from "./jsonl.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"text": "a"}\n\n{"text": "b"}\n');
 * for await (const l of new JsonlReader(path)) console.log(l.line, l.text); // 1 … then 3 …
 * ```
 */
export class JsonlReader implements AsyncIterable<JsonlLine> {
  /** Path of the file. */
  readonly path: string;
  /** Bytes read so far. */
  bytesRead = 0;
  readonly #chunkBytes: number;

  /** `chunkBytes`: read size (default 1 MiB). */
  constructor(path: string, chunkBytes = 1 << 20) {
    this.path = path;
    this.#chunkBytes = chunkBytes;
  }

  /** Yields the non-blank lines in order. */
  async *[Symbol.asyncIterator](): AsyncIterator<JsonlLine> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path, { read: true });
    } catch (e) {
      throw new Error(`${this.path}: cannot read (${(e as Error).message})`);
    }
    try {
      const decoder = new TextDecoder("utf-8");
      const buf = new Uint8Array(this.#chunkBytes);
      let pending: string[] = []; // pieces of a line that spans chunks
      let lineNo = 0;
      const emit = (raw: string): JsonlLine | null => {
        lineNo++;
        const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        return text.trim() === "" ? null : { text, line: lineNo };
      };
      while (true) {
        const n = await file.read(buf);
        if (n === null) break;
        this.bytesRead += n;
        const chunk = decoder.decode(buf.subarray(0, n), { stream: true });
        let start = 0;
        let nl = chunk.indexOf("\n");
        if (nl < 0) {
          pending.push(chunk);
          continue;
        }
        while (nl >= 0) {
          let raw = chunk.slice(start, nl);
          if (pending.length) {
            pending.push(raw);
            raw = pending.join("");
            pending = [];
          }
          const l = emit(raw);
          if (l) yield l;
          start = nl + 1;
          nl = chunk.indexOf("\n", start);
        }
        if (start < chunk.length) pending.push(chunk.slice(start));
      }
      pending.push(decoder.decode());
      const last = pending.join("");
      if (last !== "") {
        const l = emit(last);
        if (l) yield l;
      }
    } finally {
      file.close();
    }
  }
}

/**
 * Parses one JSONL line into an object; throws {@linkcode JsonlError} (`file:line: malformed JSON (…)` or
 * `file:line: expected a JSON object`).
 *
 * @example
 * ```ts
 * import { parseJsonlLine } from "./jsonl.ts";
 * console.log(parseJsonlLine('{"text": "x"}', "a.jsonl", 1).text); // x
 * ```
 */
export function parseJsonlLine(text: string, file: string, line: number): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new JsonlError(file, line, `malformed JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JsonlError(file, line, "expected a JSON object");
  }
  return value as JsonObject;
}

/**
 * Reads the string field `field` of a record. A missing or non-string value is a {@linkcode JsonlError}
 * naming the field; `null` reads as `""` (an empty document, dropped by the caller).
 *
 * @example
 * ```ts
 * import { stringField } from "./jsonl.ts";
 * console.log(stringField({ text: "x" }, ["raw_text", "text"], "a.jsonl", 1)); // x
 * ```
 */
export function stringField(
  record: JsonObject,
  fields: readonly string[],
  file: string,
  line: number,
): string {
  for (const f of fields) {
    const v = record[f];
    if (typeof v === "string") return v;
    if (v === null) return "";
  }
  const names = fields.map((f) => `'${f}'`).join(" or ");
  throw new JsonlError(file, line, `missing string field ${names}`, "missing_field");
}

/**
 * Writes a file atomically: text goes to a temporary file next to `path` (buffered), `commit()` fsyncs and
 * renames it over `path`, `abort()` removes it. Until `commit()` nothing exists at `path`.
 *
 * @example
 * ```ts
 * import { AtomicWriter } from "./jsonl.ts";
 * const path = (await Deno.makeTempDir()) + "/out.jsonl";
 * const w = await AtomicWriter.open(path);
 * w.write('{"text": "a"}\n');
 * await w.commit();
 * console.log(await Deno.readTextFile(path));
 * ```
 */
export class AtomicWriter {
  /** Final path. */
  readonly path: string;
  /** Temporary path (removed or renamed at the end). */
  readonly tempPath: string;
  /** Bytes written so far (flushed or buffered). */
  bytesWritten = 0;
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();
  #parts: string[] = [];
  #buffered = 0;
  #open = true;

  private constructor(path: string, tempPath: string, file: Deno.FsFile) {
    this.path = path;
    this.tempPath = tempPath;
    this.#file = file;
  }

  /** Creates the temporary file (and the parent directory of `path` if needed). */
  static async open(path: string): Promise<AtomicWriter> {
    const slash = path.lastIndexOf("/");
    const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
    await Deno.mkdir(dir, { recursive: true });
    const base = slash >= 0 ? path.slice(slash + 1) : path;
    const tempPath = `${dir}/.${base}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const file = await Deno.open(tempPath, { write: true, createNew: true });
    return new AtomicWriter(path, tempPath, file);
  }

  /** Appends text (flushed to disk in large blocks). */
  write(text: string): Promise<void> | void {
    if (!this.#open) throw new Error(`${this.path}: writer already closed`);
    this.#parts.push(text);
    this.#buffered += text.length;
    if (this.#buffered >= 1 << 22) return this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const bytes = this.#encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#buffered = 0;
    let off = 0;
    while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
    this.bytesWritten += bytes.length;
  }

  /** Flushes, fsyncs and renames the temporary file to `path`. */
  async commit(): Promise<void> {
    try {
      await this.#flush();
      await this.#file.sync();
      this.#file.close();
      this.#open = false;
      await Deno.rename(this.tempPath, this.path);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Closes and removes the temporary file; safe to call more than once. */
  async abort(): Promise<void> {
    if (this.#open) {
      this.#open = false;
      try {
        this.#file.close();
      } catch { /* already closed */ }
    }
    this.#parts = [];
    await Deno.remove(this.tempPath).catch(() => {});
  }
}

/**
 * Writes a JSON value (pretty-printed) atomically.
 *
 * @example
 * ```ts
 * import { writeJsonAtomic } from "./jsonl.ts";
 * await writeJsonAtomic((await Deno.makeTempDir()) + "/r.json", { kept: 1 });
 * ```
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const w = await AtomicWriter.open(path);
  try {
    await w.write(JSON.stringify(value, null, 2) + "\n");
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.commit();
}
