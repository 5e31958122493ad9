/**
 * Megatron-LM indexed datasets (`MMIDIDX`): a `.bin` of concatenated token ids and an `.idx` describing
 * them, byte-compatible with Megatron's `indexed_dataset.py` (`MMapIndexedDataset` / `IndexedDataset`).
 *
 * `.idx` layout (little endian): magic `MMIDIDX\0\0` (9 bytes), version uint64 = 1, dtype code uint8,
 * sequence count uint64, document-index length uint64 (documents + 1), then sizes int32[sequences],
 * pointers int64[sequences] (byte offsets into `.bin`), doc_idx int64[documents + 1].
 *
 * The writer streams the `.bin` to a temporary file and keeps only the sizes in memory; both files are
 * fsynced and renamed into place on {@linkcode IndexedDatasetWriter.close}. The reader keeps the index in
 * memory and reads token windows from the open `.bin` with positioned reads (never the whole file).
 *
 * @example
 * ```ts
 * import { IndexedDataset, IndexedDatasetWriter } from "./indexed_dataset.ts";
 * const prefix = `${Deno.makeTempDirSync()}/demo_text_document`;
 * const writer = await IndexedDatasetWriter.create(prefix, { dtype: "uint16" });
 * await writer.add([1, 15043, 3186, 2]);
 * await writer.close();
 * using ds = IndexedDataset.open(prefix);
 * console.log(ds.count, ds.slice(0, 1, 3)); // 1 Uint16Array(2) [15043, 3186]
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import type { TokenDocuments } from "./gpt_dataset.ts";

/** The element types Megatron's index can declare, by name. */
export type TokenDtype = "uint8" | "int8" | "int16" | "int32" | "int64" | "float64" | "float32" | "uint16";

/** Code and size of each {@linkcode TokenDtype} (Megatron-core's `DType` enum). */
interface DtypeInfo {
  readonly code: number;
  readonly size: number;
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
}

const DTYPES: Readonly<Record<TokenDtype, DtypeInfo>> = {
  uint8: { code: 1, size: 1, min: 0, max: 0xff, integer: true },
  int8: { code: 2, size: 1, min: -0x80, max: 0x7f, integer: true },
  int16: { code: 3, size: 2, min: -0x8000, max: 0x7fff, integer: true },
  int32: { code: 4, size: 4, min: -0x80000000, max: 0x7fffffff, integer: true },
  int64: { code: 5, size: 8, min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true },
  float64: { code: 6, size: 8, min: -Infinity, max: Infinity, integer: false },
  float32: { code: 7, size: 4, min: -Infinity, max: Infinity, integer: false },
  uint16: { code: 8, size: 2, min: 0, max: 0xffff, integer: true },
};

/** The 9-byte magic that starts every `.idx`. */
export const INDEX_MAGIC: Uint8Array = Uint8Array.of(0x4d, 0x4d, 0x49, 0x44, 0x49, 0x44, 0x58, 0, 0);

/** Bytes before the sizes array: magic 9 + version 8 + dtype 1 + sequence count 8 + doc_idx length 8. */
const HEADER_BYTES = 34;

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  throw new Error("indexed datasets need a little-endian host");
}

/**
 * The Megatron dtype code of a dtype name (`uint16` → 8, `int32` → 4, …).
 *
 * @example
 * ```ts
 * import { dtypeCode } from "./indexed_dataset.ts";
 * console.log(dtypeCode("uint16")); // 8
 * ```
 */
export function dtypeCode(dtype: TokenDtype): number {
  return DTYPES[dtype].code;
}

/**
 * Bytes per element of a dtype.
 *
 * @example
 * ```ts
 * import { dtypeSize } from "./indexed_dataset.ts";
 * console.log(dtypeSize("int32")); // 4
 * ```
 */
export function dtypeSize(dtype: TokenDtype): number {
  return DTYPES[dtype].size;
}

/**
 * The token dtype Megatron picks for a vocabulary: `uint16` when it has fewer than 65500 ids, else `int32`.
 *
 * @example
 * ```ts
 * import { optimalDtype } from "./indexed_dataset.ts";
 * console.log(optimalDtype(32014), optimalDtype(128256)); // uint16 int32
 * ```
 */
export function optimalDtype(vocabSize: number): "uint16" | "int32" {
  return vocabSize < 65500 ? "uint16" : "int32";
}

/**
 * The `.bin` and `.idx` paths of a dataset prefix.
 *
 * @example
 * ```ts
 * import { datasetPaths } from "./indexed_dataset.ts";
 * console.log(datasetPaths("out/gap_text_document").idx); // out/gap_text_document.idx
 * ```
 */
export function datasetPaths(prefix: string): { bin: string; idx: string } {
  return { bin: `${prefix}.bin`, idx: `${prefix}.idx` };
}

/**
 * The prefix Megatron's `preprocess_data.py` writes for an output prefix and JSON key:
 * `{outputPrefix}_{key}_document`.
 *
 * @example
 * ```ts
 * import { documentPrefix } from "./indexed_dataset.ts";
 * console.log(documentPrefix("out/gap")); // out/gap_text_document
 * ```
 */
export function documentPrefix(outputPrefix: string, jsonKey = "text"): string {
  return `${outputPrefix}_${jsonKey}_document`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Resolves what a user typed to a dataset prefix: strips a `.idx`/`.bin` suffix and accepts the output
 * prefix of the tokenize step (`out/gap` for `out/gap_text_document`). Returns `undefined` when no `.idx`
 * exists for it.
 *
 * @example
 * ```ts
 * import { resolvePrefix } from "./indexed_dataset.ts";
 * console.log(resolvePrefix("no/such/prefix")); // undefined
 * ```
 */
export function resolvePrefix(path: string): string | undefined {
  const bare = path.replace(/\.(idx|bin)$/, "");
  for (const candidate of [bare, documentPrefix(bare)]) {
    if (isFile(`${candidate}.idx`)) return candidate;
  }
  return undefined;
}

/** A path next to `path` for a temporary file (same directory, so `rename` is atomic). */
function tempPath(path: string): string {
  return `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Best-effort fsync of a directory, so a rename inside it is durable.
 *
 * @example
 * ```ts
 * import { syncDir } from "./indexed_dataset.ts";
 * syncDir(Deno.makeTempDirSync());
 * ```
 */
export function syncDir(dir: string): void {
  try {
    using d = Deno.openSync(dir, { read: true });
    d.syncSync();
  } catch {
    // Not every platform lets a directory be opened or synced; the rename itself is still atomic.
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced, then renamed.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./indexed_dataset.ts";
 * await writeFileAtomic(`${Deno.makeTempDirSync()}/report.json`, new TextEncoder().encode("{}"));
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = tempPath(path);
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await writeAll(file, bytes);
    await file.sync();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await Deno.rename(tmp, path);
  syncDir(dirname(path));
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** Writes a little-endian int64 (exact for |x| < 2^53). */
function setInt64(view: DataView, offset: number, x: number): void {
  view.setUint32(offset, x >>> 0, true);
  view.setInt32(offset + 4, Math.floor(x / 4294967296), true);
}

/** Reads a little-endian int64 (exact for |x| < 2^53). */
function getInt64(view: DataView, offset: number): number {
  return view.getInt32(offset + 4, true) * 4294967296 + view.getUint32(offset, true);
}

/** Yields the `.idx` bytes for sequences of `sizes` tokens (one sequence per document), in chunks. */
function* indexChunks(sizes: Int32Array, dtype: TokenDtype): Generator<Uint8Array> {
  const n = sizes.length, itemSize = DTYPES[dtype].size, chunk = 1 << 16;
  const header = new Uint8Array(HEADER_BYTES);
  const hv = new DataView(header.buffer);
  header.set(INDEX_MAGIC, 0);
  setInt64(hv, 9, 1);
  hv.setUint8(17, DTYPES[dtype].code);
  setInt64(hv, 18, n);
  setInt64(hv, 26, n + 1);
  yield header;
  for (let i = 0; i < n; i += chunk) {
    const part = sizes.subarray(i, Math.min(n, i + chunk));
    yield new Uint8Array(part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength));
  }
  let pointer = 0;
  for (let i = 0; i < n; i += chunk) {
    const m = Math.min(n, i + chunk) - i;
    const out = new DataView(new ArrayBuffer(m * 8));
    for (let j = 0; j < m; j++) {
      setInt64(out, j * 8, pointer);
      pointer += sizes[i + j] * itemSize;
    }
    yield new Uint8Array(out.buffer);
  }
  for (let i = 0; i <= n; i += chunk) {
    const m = Math.min(n + 1, i + chunk) - i;
    const out = new DataView(new ArrayBuffer(m * 8));
    for (let j = 0; j < m; j++) setInt64(out, j * 8, i + j);
    yield new Uint8Array(out.buffer);
  }
}

/**
 * Options of {@linkcode IndexedDatasetWriter.create}.
 *
 * @example
 * ```ts
 * import type { IndexedDatasetWriterOptions } from "./indexed_dataset.ts";
 * const options: IndexedDatasetWriterOptions = { dtype: "uint16" };
 * ```
 */
export interface IndexedDatasetWriterOptions {
  /** Element type of the `.bin` (see {@linkcode optimalDtype}). */
  dtype: TokenDtype;
  /** Bytes buffered before a write to the `.bin` (default 4 MiB). */
  bufferBytes?: number;
}

/**
 * What a finished dataset holds.
 *
 * @example
 * ```ts
 * import type { IndexedDatasetSummary } from "./indexed_dataset.ts";
 * const s: IndexedDatasetSummary = { prefix: "out/x_text_document", dtype: "uint16", documents: 2, tokens: 9 };
 * ```
 */
export interface IndexedDatasetSummary {
  /** Prefix of the `.bin`/`.idx` pair. */
  prefix: string;
  /** Element type. */
  dtype: TokenDtype;
  /** Number of documents (one sequence each). */
  documents: number;
  /** Number of tokens. */
  tokens: number;
}

/**
 * Streams documents into a new `{prefix}.bin` / `{prefix}.idx` pair, one sequence per document (Megatron's
 * `add_item` + `end_document`). Nothing is visible under the final names until {@linkcode close}.
 *
 * @example
 * ```ts
 * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
 * const writer = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "uint16" });
 * await writer.add([1, 2, 3]);
 * await writer.addMany(Int32Array.of(1, 4, 2, 1, 5), Int32Array.of(3, 2));
 * console.log(await writer.close()); // { prefix: …, dtype: "uint16", documents: 3, tokens: 8 }
 * ```
 */
export class IndexedDatasetWriter {
  /** Prefix of the dataset being written. */
  readonly prefix: string;
  /** Element type of the `.bin`. */
  readonly dtype: TokenDtype;
  readonly #bin: Deno.FsFile;
  readonly #binTmp: string;
  readonly #buffer: Uint8Array;
  #buffered = 0;
  #sizes = new Int32Array(1024);
  #count = 0;
  #tokens = 0;
  #closed = false;

  private constructor(prefix: string, dtype: TokenDtype, bin: Deno.FsFile, binTmp: string, buffer: number) {
    this.prefix = prefix;
    this.dtype = dtype;
    this.#bin = bin;
    this.#binTmp = binTmp;
    this.#buffer = new Uint8Array(Math.max(buffer, 1024));
  }

  /**
   * Opens a writer; the `.bin` goes to a temporary file next to its final path.
   *
   * @example
   * ```ts
   * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
   * const w = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "int32" });
   * await w.abort();
   * ```
   */
  static async create(prefix: string, options: IndexedDatasetWriterOptions): Promise<IndexedDatasetWriter> {
    if (!(options.dtype in DTYPES)) throw new Error(`unknown token dtype '${options.dtype}'`);
    await Deno.mkdir(dirname(prefix), { recursive: true });
    const binTmp = tempPath(datasetPaths(prefix).bin);
    const bin = await Deno.open(binTmp, { write: true, create: true, truncate: true });
    return new IndexedDatasetWriter(prefix, options.dtype, bin, binTmp, options.bufferBytes ?? 4 << 20);
  }

  /** Documents added so far. */
  get documents(): number {
    return this.#count;
  }

  /** Tokens added so far. */
  get tokens(): number {
    return this.#tokens;
  }

  /**
   * Appends one document.
   *
   * @example
   * ```ts
   * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
   * const w = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "uint16" });
   * await w.add([1, 29871, 2]);
   * await w.close();
   * ```
   */
  async add(tokens: ArrayLike<number>): Promise<void> {
    await this.addMany(tokens, [tokens.length]);
  }

  /**
   * Appends several documents given as concatenated ids and per-document lengths (the shape the tokenizer
   * workers return).
   *
   * @example
   * ```ts
   * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
   * const w = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "uint16" });
   * await w.addMany([1, 5, 2, 1, 6, 7, 2], [3, 4]);
   * await w.close();
   * ```
   */
  async addMany(ids: ArrayLike<number>, lengths: ArrayLike<number>): Promise<void> {
    if (this.#closed) throw new Error(`${this.prefix}: writer already closed`);
    let total = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i];
      if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
        throw new RangeError(`${this.prefix}: document length ${n} does not fit the int32 sizes array`);
      }
      total += n;
    }
    if (total !== ids.length) {
      throw new RangeError(`${this.prefix}: lengths sum to ${total} but ${ids.length} ids were given`);
    }
    const encoded = this.#encode(ids);
    while (this.#count + lengths.length > this.#sizes.length) {
      const grown = new Int32Array(this.#sizes.length * 2);
      grown.set(this.#sizes);
      this.#sizes = grown;
    }
    for (let i = 0; i < lengths.length; i++) this.#sizes[this.#count++] = lengths[i];
    this.#tokens += total;
    await this.#write(encoded);
  }

  /** The ids as bytes of this writer's dtype; out-of-range ids are an error. */
  #encode(ids: ArrayLike<number>): Uint8Array {
    const info = DTYPES[this.dtype];
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      if (!(v >= info.min && v <= info.max) || (info.integer && !Number.isInteger(v))) {
        throw new RangeError(`${this.prefix}: token ${v} does not fit ${this.dtype}`);
      }
    }
    switch (this.dtype) {
      case "uint8":
        return Uint8Array.from(ids);
      case "int8":
        return new Uint8Array(Int8Array.from(ids).buffer);
      case "int16":
        return new Uint8Array(Int16Array.from(ids).buffer);
      case "uint16":
        return new Uint8Array(Uint16Array.from(ids).buffer);
      case "int32":
        return new Uint8Array(Int32Array.from(ids).buffer);
      case "int64":
        return new Uint8Array(BigInt64Array.from(Array.from(ids, (v) => BigInt(v))).buffer);
      case "float32":
        return new Uint8Array(Float32Array.from(ids).buffer);
      case "float64":
        return new Uint8Array(Float64Array.from(ids).buffer);
    }
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#buffered + bytes.length > this.#buffer.length) await this.#flush();
    if (bytes.length >= this.#buffer.length) {
      await writeAll(this.#bin, bytes);
      return;
    }
    this.#buffer.set(bytes, this.#buffered);
    this.#buffered += bytes.length;
  }

  async #flush(): Promise<void> {
    await writeAll(this.#bin, this.#buffer.subarray(0, this.#buffered));
    this.#buffered = 0;
  }

  /**
   * Finishes the dataset: flushes and fsyncs the `.bin`, writes the `.idx` the same way, and renames both
   * into place (`.bin` first, so a present `.idx` always describes a complete `.bin`).
   *
   * @example
   * ```ts
   * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
   * const w = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "uint16" });
   * console.log((await w.close()).documents); // 0
   * ```
   */
  async close(): Promise<IndexedDatasetSummary> {
    if (this.#closed) throw new Error(`${this.prefix}: writer already closed`);
    this.#closed = true;
    const paths = datasetPaths(this.prefix);
    const idxTmp = tempPath(paths.idx);
    try {
      await this.#flush();
      await this.#bin.sync();
      this.#bin.close();
      {
        using idx = await Deno.open(idxTmp, { write: true, create: true, truncate: true });
        for (const chunk of indexChunks(this.#sizes.subarray(0, this.#count), this.dtype)) {
          await writeAll(idx, chunk);
        }
        await idx.sync();
      }
      await Deno.rename(this.#binTmp, paths.bin);
      await Deno.rename(idxTmp, paths.idx);
      syncDir(dirname(this.prefix));
    } catch (e) {
      await Deno.remove(idxTmp).catch(() => {});
      await Deno.remove(this.#binTmp).catch(() => {});
      throw e;
    }
    return { prefix: this.prefix, dtype: this.dtype, documents: this.#count, tokens: this.#tokens };
  }

  /**
   * Discards everything written (removes the temporary files).
   *
   * @example
   * ```ts
   * import { IndexedDatasetWriter } from "./indexed_dataset.ts";
   * const w = await IndexedDatasetWriter.create(`${Deno.makeTempDirSync()}/x`, { dtype: "uint16" });
   * await w.abort();
   * ```
   */
  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#bin.close();
    } catch {
      // already closed
    }
    await Deno.remove(this.#binTmp).catch(() => {});
  }
}

/**
 * Writes token documents as a dataset in one call.
 *
 * @example
 * ```ts
 * import { writeIndexedDataset } from "./indexed_dataset.ts";
 * await writeIndexedDataset(`${Deno.makeTempDirSync()}/x`, [[1, 5, 2], [1, 6, 2]], "uint16");
 * ```
 */
export async function writeIndexedDataset(
  prefix: string,
  documents: Iterable<ArrayLike<number>>,
  dtype: TokenDtype,
): Promise<IndexedDatasetSummary> {
  const writer = await IndexedDatasetWriter.create(prefix, { dtype });
  try {
    for (const doc of documents) await writer.add(doc);
  } catch (e) {
    await writer.abort();
    throw e;
  }
  return await writer.close();
}

/** A typed array of any token dtype. */
export type TokenArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Float32Array
  | Float64Array;

function viewAs(dtype: TokenDtype, buffer: ArrayBuffer): TokenArray {
  switch (dtype) {
    case "uint8":
      return new Uint8Array(buffer);
    case "int8":
      return new Int8Array(buffer);
    case "int16":
      return new Int16Array(buffer);
    case "uint16":
      return new Uint16Array(buffer);
    case "int32":
      return new Int32Array(buffer);
    case "int64":
      return Float64Array.from(new BigInt64Array(buffer), (v) => Number(v));
    case "float32":
      return new Float32Array(buffer);
    case "float64":
      return new Float64Array(buffer);
  }
}

/**
 * A Megatron indexed dataset opened for reading. The index is validated and kept in memory; tokens are read
 * on demand from the `.bin` with positioned reads. Implements `TokenDocuments` (see `gpt_dataset.ts`).
 *
 * @example
 * ```ts
 * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
 * const prefix = `${Deno.makeTempDirSync()}/x`;
 * await writeIndexedDataset(prefix, [[1, 5, 2], [1, 6, 7, 2]], "uint16");
 * using ds = IndexedDataset.open(prefix);
 * console.log(ds.count, ds.tokens, ds.length(1), Array.from(ds.document(1))); // 2 7 4 [1, 6, 7, 2]
 * ```
 */
export class IndexedDataset implements TokenDocuments, Disposable {
  /** Prefix of the `.bin`/`.idx` pair. */
  readonly prefix: string;
  /** Element type of the tokens. */
  readonly dtype: TokenDtype;
  /** Number of sequences (documents for GPT data). */
  readonly count: number;
  /** Tokens per sequence. */
  readonly sizes: Int32Array;
  /** Byte offset of each sequence in the `.bin`. */
  readonly pointers: Float64Array;
  /** Megatron's document index: sequence index where each document starts, then the sequence count. */
  readonly documentIndex: Float64Array;
  /** Total tokens. */
  readonly tokens: number;
  /** Size of the `.bin` in bytes. */
  readonly binBytes: number;
  readonly #bin: Deno.FsFile;
  readonly #binPath: string;
  #closed = false;

  private constructor(
    prefix: string,
    header: { dtype: TokenDtype; sizes: Int32Array; pointers: Float64Array; docIdx: Float64Array },
    bin: Deno.FsFile,
    binBytes: number,
  ) {
    this.prefix = prefix;
    this.dtype = header.dtype;
    this.count = header.sizes.length;
    this.sizes = header.sizes;
    this.pointers = header.pointers;
    this.documentIndex = header.docIdx;
    this.#bin = bin;
    this.#binPath = datasetPaths(prefix).bin;
    this.binBytes = binBytes;
    let tokens = 0;
    for (let i = 0; i < this.count; i++) tokens += header.sizes[i];
    this.tokens = tokens;
  }

  /**
   * Opens `{prefix}.idx` and `{prefix}.bin` (a `.idx`/`.bin` suffix or the tokenize step's output prefix is
   * accepted, see {@linkcode resolvePrefix}). A malformed or inconsistent index throws one error naming the
   * file.
   *
   * @example
   * ```ts
   * import { IndexedDataset } from "./indexed_dataset.ts";
   * try {
   *   IndexedDataset.open("missing/prefix");
   * } catch (e) {
   *   console.log((e as Error).message); // missing/prefix.idx: no such indexed dataset …
   * }
   * ```
   */
  static open(prefix: string): IndexedDataset {
    const resolved = resolvePrefix(prefix);
    if (resolved === undefined) {
      const bare = prefix.replace(/\.(idx|bin)$/, "");
      throw new Error(
        `${bare}.idx: no such indexed dataset (nor ${
          documentPrefix(bare)
        }.idx); run 'deno task data tokenize'`,
      );
    }
    const paths = datasetPaths(resolved);
    const idxBytes = Deno.readFileSync(paths.idx);
    let binBytes: number;
    try {
      binBytes = Deno.statSync(paths.bin).size;
    } catch {
      throw new Error(`${paths.bin}: missing data file for ${paths.idx}`);
    }
    const header = parseIndex(idxBytes, paths.idx, binBytes);
    const bin = Deno.openSync(paths.bin, { read: true });
    return new IndexedDataset(resolved, header, bin, binBytes);
  }

  /**
   * Token count of sequence `i`.
   *
   * @example
   * ```ts
   * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
   * const prefix = `${Deno.makeTempDirSync()}/x`;
   * await writeIndexedDataset(prefix, [[1, 5, 2]], "uint16");
   * using ds = IndexedDataset.open(prefix);
   * console.log(ds.length(0)); // 3
   * ```
   */
  length(i: number): number {
    return this.sizes[i];
  }

  /**
   * Tokens `[start, end)` of sequence `i`, read from the `.bin` (a fresh array of the dataset's dtype).
   *
   * @example
   * ```ts
   * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
   * const prefix = `${Deno.makeTempDirSync()}/x`;
   * await writeIndexedDataset(prefix, [[1, 5, 6, 2]], "uint16");
   * using ds = IndexedDataset.open(prefix);
   * console.log(ds.slice(0, 1, 3)); // Uint16Array(2) [5, 6]
   * ```
   */
  slice(i: number, start: number, end: number): TokenArray {
    if (!(i >= 0 && i < this.count) || !Number.isInteger(i)) {
      throw new RangeError(`${this.prefix}: sequence ${i} out of range [0, ${this.count})`);
    }
    const size = this.sizes[i];
    if (!(0 <= start && start <= end && end <= size)) {
      throw new RangeError(
        `${this.prefix}: slice [${start}, ${end}) outside sequence ${i} of ${size} tokens`,
      );
    }
    const itemSize = DTYPES[this.dtype].size;
    const buffer = new ArrayBuffer((end - start) * itemSize);
    this.#readAt(new Uint8Array(buffer), this.pointers[i] + start * itemSize);
    return viewAs(this.dtype, buffer);
  }

  /**
   * All tokens of sequence `i`.
   *
   * @example
   * ```ts
   * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
   * const prefix = `${Deno.makeTempDirSync()}/x`;
   * await writeIndexedDataset(prefix, [[1, 5, 2]], "uint16");
   * using ds = IndexedDataset.open(prefix);
   * console.log(ds.document(0)); // Uint16Array(3) [1, 5, 2]
   * ```
   */
  document(i: number): TokenArray {
    return this.slice(i, 0, this.length(i));
  }

  /** Fills `out` from byte `position` of the `.bin` (seek + read until full). */
  #readAt(out: Uint8Array, position: number): void {
    if (this.#closed) throw new Error(`${this.#binPath}: dataset is closed`);
    this.#bin.seekSync(position, Deno.SeekMode.Start);
    for (let done = 0; done < out.length;) {
      const n = this.#bin.readSync(out.subarray(done));
      if (n === null || n === 0) {
        throw new Error(`${this.#binPath}: unexpected end of file at byte ${position + done}`);
      }
      done += n;
    }
  }

  /**
   * Closes the `.bin`.
   *
   * @example
   * ```ts
   * import { IndexedDataset, writeIndexedDataset } from "./indexed_dataset.ts";
   * const prefix = `${Deno.makeTempDirSync()}/x`;
   * await writeIndexedDataset(prefix, [[1, 2]], "uint16");
   * const ds = IndexedDataset.open(prefix);
   * ds.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#bin.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Parses and validates `.idx` bytes against the length of their `.bin`; errors name `path`.
 *
 * @example
 * ```ts
 * import { parseIndex } from "./indexed_dataset.ts";
 * try {
 *   parseIndex(new Uint8Array(4), "x.idx", 0);
 * } catch (e) {
 *   console.log((e as Error).message); // x.idx: not a Megatron MMIDIDX index (…)
 * }
 * ```
 */
export function parseIndex(
  bytes: Uint8Array,
  path: string,
  binBytes: number,
): { dtype: TokenDtype; sizes: Int32Array; pointers: Float64Array; docIdx: Float64Array } {
  const fail = (why: string): never => {
    throw new Error(`${path}: corrupt indexed dataset index: ${why}`);
  };
  if (bytes.length < HEADER_BYTES || !INDEX_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new Error(`${path}: not a Megatron MMIDIDX index (bad magic or shorter than its header)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (offset: number): number => {
    const v = getInt64(view, offset);
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER)) fail(`uint64 at byte ${offset} is out of range`);
    return v;
  };
  const version = u64(9);
  if (version !== 1) fail(`version ${version}, expected 1`);
  const code = view.getUint8(17);
  const dtype = (Object.keys(DTYPES) as TokenDtype[]).find((k) => DTYPES[k].code === code);
  if (dtype === undefined) fail(`unknown dtype code ${code}`);
  const itemSize = DTYPES[dtype!].size;
  const count = u64(18), docCount = u64(26);
  const expected = HEADER_BYTES + count * 12 + docCount * 8;
  if (bytes.length !== expected) {
    fail(
      `${bytes.length} bytes, but ${count} sequences and ${docCount} document-index entries need ${expected}` +
        (bytes.length === expected + count ? " (multimodal indices are not supported)" : ""),
    );
  }
  const sizes = new Int32Array(count);
  const pointers = new Float64Array(count);
  let expectedPointer = 0;
  for (let i = 0; i < count; i++) {
    const size = view.getInt32(HEADER_BYTES + 4 * i, true);
    const pointer = getInt64(view, HEADER_BYTES + 4 * count + 8 * i);
    if (size < 0) fail(`sequence ${i} has negative size ${size}`);
    if (pointer !== expectedPointer) {
      fail(
        `pointer of sequence ${i} is ${pointer}, expected ${expectedPointer} (sizes and pointers disagree)`,
      );
    }
    sizes[i] = size;
    pointers[i] = pointer;
    expectedPointer += size * itemSize;
  }
  if (expectedPointer !== binBytes) {
    fail(
      `the sizes describe ${expectedPointer} bytes of tokens but the .bin has ${binBytes} (truncated or stale?)`,
    );
  }
  const docIdx = new Float64Array(docCount);
  const docBase = HEADER_BYTES + 12 * count;
  for (let i = 0; i < docCount; i++) {
    docIdx[i] = getInt64(view, docBase + 8 * i);
    if (i === 0 ? docIdx[0] !== 0 : docIdx[i] < docIdx[i - 1]) {
      fail(`document index not increasing from 0 at ${i}`);
    }
  }
  if (docCount === 0 || docIdx[docCount - 1] !== count) {
    fail(`document index must end at the sequence count ${count}`);
  }
  return { dtype: dtype!, sizes, pointers, docIdx };
}
