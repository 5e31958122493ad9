/**
 * safetensors files: 8-byte little-endian header length, a JSON header
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`), then the tensor bytes.
 * The writer streams tensors to disk one at a time (a tensor may itself arrive in pieces) and converts fp32
 * values to BF16/F16 with round-to-nearest-even; the reader validates the header against the file (offsets in
 * range, contiguous and non-overlapping, shape × dtype = byte length) before reading anything, and reads any
 * numeric dtype into a Float32Array in bounded chunks. Offsets are JS numbers (exact to 2^53), so files past
 * 4 GiB work; the header length is read as a 64-bit integer.
 *
 * @module
 */
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./convert/dtype.ts";

/** Bytes per element of the supported dtypes. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Dtypes the writer produces from fp32 values. */
export type WriteDtype = "F32" | "F16" | "BF16";

/** One tensor's entry in the header. */
export interface TensorEntry {
  /** Element type, e.g. `F32`. */
  dtype: string;
  /** Shape. */
  shape: number[];
  /** Byte range relative to the start of the data section. */
  data_offsets: [number, number];
}

/** A parsed header. */
export interface SafetensorsHeader {
  /** Tensors by name, in file order. */
  tensors: Map<string, TensorEntry>;
  /** `__metadata__` (string → string). */
  metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
}

/** A tensor to write: fp32 values, whole or as a stream of consecutive pieces. */
export interface TensorToWrite {
  /** Tensor name. */
  name: string;
  /** Shape; its product must equal the number of values. */
  shape: number[];
  /** Values (or consecutive pieces of them, for tensors too large to hold twice). */
  data: Float32Array | AsyncIterable<Float32Array>;
  /** Stored dtype (default F32); BF16/F16 are rounded to nearest even. */
  dtype?: WriteDtype;
}

/** A header entry to declare before streaming: name, shape and stored dtype. */
export interface TensorDecl {
  /** Tensor name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** Stored dtype (default F32). */
  dtype?: WriteDtype;
}

/**
 * Number of elements of a shape.
 *
 * @example
 * ```ts
 * import { numel } from "./safetensors.ts";
 * console.log(numel([2, 3, 4])); // 24
 * ```
 */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The header bytes (JSON padded with spaces to a multiple of 8) and the data-section size for `decls`.
 *
 * @example
 * ```ts
 * import { encodeHeader } from "./safetensors.ts";
 * const { bytes, dataBytes } = encodeHeader([{ name: "w", shape: [2, 3], dtype: "BF16" }], {});
 * console.log(bytes.length % 8, dataBytes); // 0 12
 * ```
 */
export function encodeHeader(
  decls: readonly { name: string; shape: number[]; dtype?: string }[],
  metadata: Record<string, string>,
): { bytes: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of decls) {
    const dtype = t.dtype ?? "F32";
    if (t.name === "__metadata__" || t.name in header) {
      throw new Error(`tensor name '${t.name}' is reserved or repeated`);
    }
    if (!DTYPE_BYTES[dtype]) throw new Error(`tensor '${t.name}': unknown dtype ${dtype}`);
    const bytes = numel(t.shape) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  const raw = new TextEncoder().encode(json);
  const padded = new Uint8Array(8 + raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20);
  new DataView(padded.buffer).setBigUint64(0, BigInt(padded.length - 8), true);
  padded.set(raw, 8);
  return { bytes: padded, dataBytes: offset };
}

/** Encodes fp32 values into the bytes of `dtype`. */
function encodeValues(values: Float32Array, dtype: WriteDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const conv = dtype === "BF16" ? f32ToBf16 : f32ToF16;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

const PIECE = 1 << 22; // values converted per write (16 MiB of fp32)

/** Options of {@linkcode writeSafetensors}. */
export interface WriteOptions {
  /** Sees every byte written, in order (e.g. to hash the file without reading it back). */
  onWrite?: (bytes: Uint8Array) => void;
}

/**
 * Writes a safetensors file at `path` (caller provides a temp path and renames), fsyncing before close.
 * `tensors` is iterated twice unless `shapes` declares the header up front: once for the header, once for the
 * bytes, so it can be a lazy (sync or async) producer that reads each tensor when asked.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * await writeSafetensors("/tmp/x.safetensors", [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors:
    | Iterable<TensorToWrite>
    | AsyncIterable<TensorToWrite>
    | (() => Iterable<TensorToWrite> | AsyncIterable<TensorToWrite>),
  metadata: Record<string, string> = {},
  shapes?: readonly TensorDecl[],
  opts: WriteOptions = {},
): Promise<void> {
  const produce = typeof tensors === "function" ? tensors : () => tensors;
  let list = shapes;
  if (!list) {
    const found: TensorDecl[] = [];
    for await (const t of produce()) found.push({ name: t.name, shape: t.shape, dtype: t.dtype });
    list = found;
  }
  const { bytes: header } = encodeHeader(list, metadata);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const write = async (bytes: Uint8Array) => {
      opts.onWrite?.(bytes);
      await writeAll(file, bytes);
    };
    await write(header);
    let i = 0;
    for await (const t of produce()) {
      const expect = list[i++];
      const dtype = expect?.dtype ?? "F32";
      if (!expect || expect.name !== t.name || (t.dtype ?? "F32") !== dtype) {
        throw new Error(`${path}: tensor '${t.name}' does not match the declared header`);
      }
      const want = numel(expect.shape);
      let got = 0;
      const pieces = t.data instanceof Float32Array ? [t.data] : t.data;
      for await (const piece of pieces) {
        got += piece.length;
        if (got > want) break;
        for (let o = 0; o < piece.length; o += PIECE) {
          await write(encodeValues(piece.subarray(o, o + PIECE), dtype));
        }
      }
      if (got !== want) {
        throw new Error(
          `${path}: tensor '${t.name}' has ${got} values, its shape [${expect.shape}] needs ${want}`,
        );
      }
    }
    if (i !== list.length) throw new Error(`${path}: ${list.length - i} declared tensors were not produced`);
    await file.sync();
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

async function readInto(file: Deno.FsFile, position: number, buf: Uint8Array, path: string): Promise<void> {
  await file.seek(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) throw new Error(`${path}: truncated (wanted ${buf.length} bytes at offset ${position})`);
    got += n;
  }
}

async function readExact(
  file: Deno.FsFile,
  position: number,
  length: number,
  path: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(length);
  await readInto(file, position, buf, path);
  return buf;
}

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Reads and validates the header of an open file.
 *
 * @example
 * ```ts ignore
 * import { readHeader } from "./safetensors.ts";
 * using f = await Deno.open("/tmp/x.safetensors");
 * const h = await readHeader(f, "/tmp/x.safetensors");
 * console.log([...h.tensors.keys()]);
 * ```
 */
export async function readHeader(file: Deno.FsFile, path: string): Promise<SafetensorsHeader> {
  const size = (await file.stat()).size;
  if (size < 8) throw new Error(`${path}: not a safetensors file (${size} bytes)`);
  const len = new DataView((await readExact(file, 0, 8, path)).buffer).getBigUint64(0, true);
  if (len > BigInt(size - 8)) throw new Error(`${path}: header length ${len} runs past the end of the file`);
  if (len > BigInt(MAX_HEADER_BYTES)) throw new Error(`${path}: header length ${len} is implausibly large`);
  const raw = await readExact(file, 8, Number(len), path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (e) {
    throw new Error(`${path}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path}: header is not a JSON object`);
  }
  const dataStart = 8 + Number(len), dataLen = size - dataStart;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (
        typeof v !== "object" || v === null || Array.isArray(v) ||
        !Object.values(v).every((x) => typeof x === "string")
      ) {
        throw new Error(`${path}: __metadata__ must map strings to strings`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as TensorEntry;
    const width = DTYPE_BYTES[e?.dtype];
    if (!width) throw new Error(`${path}: tensor '${name}' has unknown dtype ${JSON.stringify(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw new Error(`${path}: tensor '${name}' has an invalid shape`);
    }
    const offs: unknown[] = Array.isArray(e.data_offsets) ? e.data_offsets : [];
    const b = offs[0] as number, end = offs[1] as number;
    if (
      offs.length !== 2 || !Number.isSafeInteger(b) || !Number.isSafeInteger(end) || b < 0 || end < b ||
      end > dataLen
    ) {
      throw new Error(
        `${path}: tensor '${name}' offsets ${JSON.stringify(e.data_offsets)} are outside the data`,
      );
    }
    const want = numel(e.shape) * width;
    if (end - b !== want) {
      throw new Error(`${path}: tensor '${name}' spans ${end - b} bytes, shape × dtype = ${want}`);
    }
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data_offsets: [b, end] });
  }
  const sorted = [...tensors.entries()].sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]);
  let expect = 0;
  for (let i = 0; i < sorted.length; i++) {
    const [b, end] = sorted[i][1].data_offsets;
    if (i > 0 && b < sorted[i - 1][1].data_offsets[1]) {
      throw new Error(`${path}: tensors '${sorted[i - 1][0]}' and '${sorted[i][0]}' overlap`);
    }
    if (b !== expect) {
      throw new Error(`${path}: tensor '${sorted[i][0]}' starts at ${b}, expected ${expect} (gap)`);
    }
    expect = end;
  }
  if (expect !== dataLen) {
    throw new Error(`${path}: data section is ${dataLen} bytes but the tensors cover ${expect}`);
  }
  return { tensors, metadata, dataStart };
}

/**
 * Decodes `bytes` of `dtype` into `out` (element by element; integers become their float value).
 *
 * @example
 * ```ts
 * import { decodeInto } from "./safetensors.ts";
 * const out = new Float32Array(1);
 * decodeInto(new Uint8Array([0x80, 0x3f]), "BF16", out);
 * console.log(out[0]); // 1
 * ```
 */
export function decodeInto(bytes: Uint8Array, dtype: string, out: Float32Array): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = out.length;
  switch (dtype) {
    case "F32":
      new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes.subarray(0, n * 4));
      return;
    case "BF16":
      for (let i = 0; i < n; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true));
      return;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return;
    case "F64":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return;
    case "I64":
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return;
    case "I8":
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return;
    case "U8":
    case "BOOL":
      for (let i = 0; i < n; i++) out[i] = bytes[i];
      return;
  }
  throw new Error(`cannot decode dtype ${dtype}`);
}

const CHUNK_BYTES = 1 << 24;

/**
 * Opens a safetensors file for random access to its tensors.
 *
 * @example
 * ```ts
 * import { SafetensorsReader } from "./safetensors.ts";
 * using r = await SafetensorsReader.open("/tmp/x.safetensors");
 * const w = await r.read("w"); // any dtype, as fp32
 * ```
 */
export class SafetensorsReader implements Disposable {
  /** The validated header. */
  readonly header: SafetensorsHeader;
  /** The file path. */
  readonly path: string;
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile, path: string, header: SafetensorsHeader) {
    this.#file = file;
    this.path = path;
    this.header = header;
  }

  /** Opens and validates `path`. */
  static async open(path: string): Promise<SafetensorsReader> {
    const file = await Deno.open(path, { read: true }).catch((e) => {
      throw new Error(`${path}: cannot open (${(e as Error).message})`);
    });
    try {
      return new SafetensorsReader(file, path, await readHeader(file, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  #entry(name: string): TensorEntry {
    const e = this.header.tensors.get(name);
    if (!e) throw new Error(`${this.path}: no tensor '${name}'`);
    return e;
  }

  /** Reads an F32 tensor (error for other dtypes). */
  async readF32(name: string): Promise<Float32Array<ArrayBuffer>> {
    const e = this.#entry(name);
    if (e.dtype !== "F32") throw new Error(`${this.path}: tensor '${name}' is ${e.dtype}, expected F32`);
    return await this.read(name);
  }

  /**
   * Reads a tensor of any numeric dtype as fp32 (bf16/f16 widened exactly), decoding in bounded chunks; into
   * `into` when given (see {@linkcode SafetensorsReader.readRange}).
   */
  async read(name: string, into?: Float32Array<ArrayBuffer>): Promise<Float32Array<ArrayBuffer>> {
    const e = this.#entry(name);
    return await this.readRange(name, 0, numel(e.shape), into);
  }

  /**
   * Reads elements [start, start + count) of a tensor (flat, row-major) as fp32, into the front of `into`
   * when given (it must hold `count` values; the returned array is a view of it) instead of a new array.
   */
  async readRange(
    name: string,
    start: number,
    count: number,
    into?: Float32Array<ArrayBuffer>,
  ): Promise<Float32Array<ArrayBuffer>> {
    const e = this.#entry(name);
    const width = DTYPE_BYTES[e.dtype], n = numel(e.shape);
    if (start < 0 || count < 0 || start + count > n) {
      throw new Error(`${this.path}: range [${start}, ${start + count}) is outside tensor '${name}' (${n})`);
    }
    if (into && into.length < count) throw new Error(`readRange: buffer of ${into.length} < ${count} values`);
    const out = into ? into.subarray(0, count) : new Float32Array(count);
    const base = this.header.dataStart + e.data_offsets[0] + start * width;
    if (e.dtype === "F32") {
      await readInto(this.#file, base, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), this.path);
      return out;
    }
    const per = Math.max(1, Math.floor(CHUNK_BYTES / width));
    const scratch = new Uint8Array(Math.min(count, per) * width);
    for (let i = 0; i < count; i += per) {
      const k = Math.min(per, count - i);
      const bytes = scratch.subarray(0, k * width);
      await readInto(this.#file, base + i * width, bytes, this.path);
      decodeInto(bytes, e.dtype, out.subarray(i, i + k));
    }
    return out;
  }

  /** Reads a tensor's stored bytes unchanged. */
  async readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const e = this.#entry(name);
    const [b, end] = e.data_offsets;
    return await readExact(this.#file, this.header.dataStart + b, end - b, this.path);
  }

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.#file.close();
  }
}
