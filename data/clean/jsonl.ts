/**
 * Streaming JSON Lines for the cleaning pipeline: a chunked line reader (a multi-GB file is never held in
 * memory), record parsing whose errors name the file and line, and an atomic writer (temporary file in the
 * same directory, fsync, rename; removed on failure) so that an output is either complete or absent.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";

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

/** One line of a byte stream, as yielded by {@linkcode splitLines}. */
export interface RawLine {
  /** The line without its terminator (`\n` or `\r\n`); invalid UTF-8 bytes read as U+FFFD. */
  text: string;
  /** 1-based line number. */
  line: number;
  /** True when the line's bytes were not valid UTF-8 (and `text` holds U+FFFD replacements). */
  invalidUtf8: boolean;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Decodes one line's bytes, saying whether they were valid UTF-8. */
function decodeLine(bytes: Uint8Array): [string, boolean] {
  try {
    return [strictUtf8.decode(bytes), false];
  } catch {
    return [lenientUtf8.decode(bytes), true];
  }
}

/** The complete lines of `bytes` (which ends with `\n`): one decode when all are valid UTF-8, else line by line. */
function* completeLines(bytes: Uint8Array): Generator<[string, boolean]> {
  let text: string | undefined;
  try {
    text = strictUtf8.decode(bytes);
  } catch { /* some line is not valid UTF-8: decode line by line to tell which */ }
  if (text !== undefined) {
    for (let start = 0, nl = text.indexOf("\n"); nl !== -1; start = nl + 1, nl = text.indexOf("\n", start)) {
      yield [text.slice(start, nl), false];
    }
    return;
  }
  for (let start = 0, nl = bytes.indexOf(10); nl !== -1; start = nl + 1, nl = bytes.indexOf(10, start)) {
    yield decodeLine(bytes.subarray(start, nl));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Splits a stream of bytes into lines (blank ones included), decoding UTF-8; a leading BOM is dropped.
 * Every byte is scanned once, however long a line is: the chunks of a line that spans many chunks are
 * joined only when its `\n` arrives. Splitting on the `\n` byte is safe because it never occurs inside
 * a multi-byte UTF-8 character. The producer must not reuse a chunk's memory after yielding it.
 *
 * @example
 * ```ts
 * import { splitLines } from "./jsonl.ts";
 * const bytes = new TextEncoder().encode("a\r\nb");
 * for await (const l of splitLines([bytes.subarray(0, 2), bytes.subarray(2)])) console.log(l.line, l.text); // 1 a, 2 b
 * ```
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<RawLine> {
  let pending: Uint8Array[] = []; // bytes after the last newline seen
  let lineNo = 0;
  const line = ([raw, invalidUtf8]: [string, boolean]): RawLine => {
    let text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (lineNo === 0 && text.startsWith("\uFEFF")) text = text.slice(1);
    return { text, line: ++lineNo, invalidUtf8 };
  };
  for await (const chunk of chunks) {
    const last = chunk.lastIndexOf(10);
    if (last < 0) {
      if (chunk.length > 0) pending.push(chunk);
      continue;
    }
    pending.push(chunk.subarray(0, last + 1));
    const complete = concat(pending);
    pending = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
    for (const l of completeLines(complete)) yield line(l);
  }
  if (pending.length > 0) yield line(decodeLine(concat(pending)));
}

/**
 * Reads a file line by line in fixed-size chunks, skipping blank lines. `bytesRead` grows as the file is
 * consumed (for MB/s reporting); `invalidUtf8Lines` counts the lines whose invalid UTF-8 bytes were
 * replaced with U+FFFD.
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
  /** Lines read so far whose bytes were not valid UTF-8 (decoded with U+FFFD replacements). */
  invalidUtf8Lines = 0;
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
    const chunks = async function* (reader: JsonlReader, size: number): AsyncGenerator<Uint8Array> {
      while (true) {
        const buf = new Uint8Array(size);
        const n = await file.read(buf);
        if (n === null) return;
        reader.bytesRead += n;
        yield buf.subarray(0, n);
      }
    };
    try {
      for await (const { text, line, invalidUtf8 } of splitLines(chunks(this, this.#chunkBytes))) {
        if (invalidUtf8) this.invalidUtf8Lines++;
        if (text.trim() !== "") yield { text, line };
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

/** The canonical path of `path`: `.`/`..` and symlinks resolved, through its parent when it does not exist yet. */
async function canonicalPath(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await Deno.realPath(absolute);
  } catch {
    try {
      return join(await Deno.realPath(dirname(absolute)), basename(absolute));
    } catch {
      return absolute; // the directory does not exist yet, so no input lives there
    }
  }
}

/**
 * Throws `OUTPUT_FLAG PATH is the same file as INPUT_FLAG PATH` when an output would replace an input
 * (equal after resolving `./`, `..` and symlinks); call it before reading or writing anything.
 *
 * @example
 * ```ts
 * import { refuseOverwritingInputs } from "./jsonl.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/x.jsonl`, "");
 * await refuseOverwritingInputs([["--input", `${dir}/x.jsonl`]], [["--output", `${dir}/./x.jsonl`]])
 *   .catch((e) => console.log(e.message)); // --output …/./x.jsonl is the same file as --input …/x.jsonl …
 * ```
 */
export async function refuseOverwritingInputs(
  inputs: readonly (readonly [flag: string, path: string])[],
  outputs: readonly (readonly [flag: string, path: string])[],
): Promise<void> {
  const canonicalInputs = await Promise.all(inputs.map(([, path]) => canonicalPath(path)));
  for (const [outFlag, outPath] of outputs) {
    const i = canonicalInputs.indexOf(await canonicalPath(outPath));
    if (i >= 0) {
      const [inFlag, inPath] = inputs[i];
      throw new Error(
        `${outFlag} ${outPath} is the same file as ${inFlag} ${inPath}: writing it would replace the input`,
      );
    }
  }
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
