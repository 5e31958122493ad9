/**
 * safetensors files: 8-byte little-endian header length, a JSON header
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`), then the tensor bytes.
 * The writer streams tensors to disk one at a time; the reader validates the header against the file
 * (offsets in range, contiguous and non-overlapping, shape × dtype = byte length) before reading anything.
 *
 * @module
 */

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

/** A tensor to write: fp32 data (other dtypes arrive with the conversion work). */
export interface TensorToWrite {
  /** Tensor name. */
  name: string;
  /** Shape; its product must equal `data.length`. */
  shape: number[];
  /** Values. */
  data: Float32Array;
}

/**
 * Writes a safetensors file at `path` (caller provides a temp path and renames), fsyncing before close.
 * `tensors` is iterated twice: once for the header (shapes), once for the bytes, so it can be a lazy
 * producer that reads each tensor when asked.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * await writeSafetensors("/tmp/x.safetensors", [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<TensorToWrite> | (() => Iterable<TensorToWrite>),
  metadata: Record<string, string> = {},
  shapes?: { name: string; shape: number[] }[],
): Promise<void> {
  const produce = typeof tensors === "function" ? tensors : () => tensors;
  const list = shapes ?? [...produce()].map((t) => ({ name: t.name, shape: t.shape }));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of list) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // align the data section to 8 bytes
  const headerBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, prefix);
    await writeAll(file, headerBytes);
    let i = 0;
    for (const t of produce()) {
      const expect = list[i++];
      if (!expect || expect.name !== t.name || t.data.length !== expect.shape.reduce((a, b) => a * b, 1)) {
        throw new Error(`${path}: tensor '${t.name}' does not match the declared header`);
      }
      await writeAll(file, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
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

async function readExact(
  file: Deno.FsFile,
  position: number,
  length: number,
  path: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) throw new Error(`${path}: truncated (wanted ${length} bytes at offset ${position})`);
    got += n;
  }
  return buf;
}

/** Reads and validates the header of an open file. */
export async function readHeader(file: Deno.FsFile, path: string): Promise<SafetensorsHeader> {
  const size = (await file.stat()).size;
  if (size < 8) throw new Error(`${path}: not a safetensors file (${size} bytes)`);
  const len = new DataView((await readExact(file, 0, 8, path)).buffer).getBigUint64(0, true);
  if (len > BigInt(size - 8)) throw new Error(`${path}: header length ${len} runs past the end of the file`);
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
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as TensorEntry;
    const width = DTYPE_BYTES[e?.dtype];
    if (!width) throw new Error(`${path}: tensor '${name}' has unknown dtype ${JSON.stringify(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isInteger(s) && s >= 0)) {
      throw new Error(`${path}: tensor '${name}' has an invalid shape`);
    }
    const [b, end] = e.data_offsets ?? [];
    if (!Number.isInteger(b) || !Number.isInteger(end) || b < 0 || end < b || end > dataLen) {
      throw new Error(
        `${path}: tensor '${name}' offsets ${JSON.stringify(e.data_offsets)} are outside the data`,
      );
    }
    const want = e.shape.reduce((a, s) => a * s, 1) * width;
    if (end - b !== want) {
      throw new Error(`${path}: tensor '${name}' spans ${end - b} bytes, shape × dtype = ${want}`);
    }
    tensors.set(name, e);
  }
  const sorted = [...tensors.entries()].sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][1].data_offsets[0] < sorted[i - 1][1].data_offsets[1]) {
      throw new Error(`${path}: tensors '${sorted[i - 1][0]}' and '${sorted[i][0]}' overlap`);
    }
  }
  return { tensors, metadata, dataStart };
}

/**
 * Opens a safetensors file for random access to its tensors (fp32 read for now).
 *
 * @example
 * ```ts
 * import { SafetensorsReader } from "./safetensors.ts";
 * using r = await SafetensorsReader.open("/tmp/x.safetensors");
 * const w = await r.readF32("w");
 * ```
 */
export class SafetensorsReader implements Disposable {
  /** The validated header. */
  readonly header: SafetensorsHeader;
  readonly #file: Deno.FsFile;
  readonly #path: string;

  private constructor(file: Deno.FsFile, path: string, header: SafetensorsHeader) {
    this.#file = file;
    this.#path = path;
    this.header = header;
  }

  /** Opens and validates `path`. */
  static async open(path: string): Promise<SafetensorsReader> {
    const file = await Deno.open(path, { read: true });
    try {
      return new SafetensorsReader(file, path, await readHeader(file, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Reads an F32 tensor. */
  async readF32(name: string): Promise<Float32Array<ArrayBuffer>> {
    const e = this.header.tensors.get(name);
    if (!e) throw new Error(`${this.#path}: no tensor '${name}'`);
    if (e.dtype !== "F32") throw new Error(`${this.#path}: tensor '${name}' is ${e.dtype}, expected F32`);
    const [b, end] = e.data_offsets;
    const bytes = await readExact(this.#file, this.header.dataStart + b, end - b, this.#path);
    return new Float32Array(bytes.buffer, 0, (end - b) / 4);
  }

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.#file.close();
  }
}
