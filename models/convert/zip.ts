/**
 * Reading entries of a zip archive (what `torch.save` writes since PyTorch 1.6): the end-of-central-directory
 * record (ZIP64 included, so archives and entries past 4 GiB work), the central directory, and byte ranges of
 * stored (uncompressed) entries read straight from the file. Deflated entries can be read whole (small ones:
 * `data.pkl` of some writers).
 *
 * @module
 */

/** One archive member. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  /** Compressed size. */
  compressedSize: number;
  /** Uncompressed size. */
  size: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

async function readAt(
  file: Deno.FsFile,
  pos: number,
  len: number,
  path: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(len);
  await file.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < len) {
    const n = await file.read(buf.subarray(got));
    if (n === null) throw new Error(`${path}: truncated zip archive (wanted ${len} bytes at ${pos})`);
    got += n;
  }
  return buf;
}

const u64 = (dv: DataView, o: number) => Number(dv.getBigUint64(o, true));

/**
 * A zip archive opened for random access.
 *
 * @example
 * ```ts ignore
 * using zip = await ZipReader.open("pytorch_model.bin");
 * const pkl = await zip.readAll(zip.find(/\/data\.pkl$/)!);
 * ```
 */
export class ZipReader implements Disposable {
  /** Members by name. */
  readonly entries: Map<string, ZipEntry>;
  /** Archive path. */
  readonly path: string;
  readonly #file: Deno.FsFile;
  readonly #dataStart = new Map<string, number>();

  private constructor(file: Deno.FsFile, path: string, entries: Map<string, ZipEntry>) {
    this.#file = file;
    this.path = path;
    this.entries = entries;
  }

  /** Opens and indexes `path`; a file that is not a zip archive is refused. */
  static async open(path: string): Promise<ZipReader> {
    const file = await Deno.open(path, { read: true }).catch((e) => {
      throw new Error(`${path}: cannot open (${(e as Error).message})`);
    });
    try {
      return new ZipReader(file, path, await ZipReader.#index(file, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  static async #index(file: Deno.FsFile, path: string): Promise<Map<string, ZipEntry>> {
    const size = (await file.stat()).size;
    const tailLen = Math.min(size, 65557);
    const tail = await readAt(file, size - tailLen, tailLen, path);
    const tdv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tdv.getUint32(i, true) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`${path}: not a zip archive (no end-of-central-directory record)`);
    let count = tdv.getUint16(eocd + 10, true);
    let cdSize = tdv.getUint32(eocd + 12, true);
    let cdOffset = tdv.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || tdv.getUint32(loc, true) !== 0x07064b50) {
        throw new Error(`${path}: ZIP64 locator missing`);
      }
      const rec = await readAt(file, u64(tdv, loc + 8), 56, path);
      const rdv = new DataView(rec.buffer);
      if (rdv.getUint32(0, true) !== 0x06064b50) {
        throw new Error(`${path}: bad ZIP64 end-of-central-directory`);
      }
      count = u64(rdv, 32);
      cdSize = u64(rdv, 40);
      cdOffset = u64(rdv, 48);
    }
    if (cdOffset + cdSize > size) throw new Error(`${path}: central directory runs past the end of the file`);
    const cd = await readAt(file, cdOffset, cdSize, path);
    const dv = new DataView(cd.buffer);
    const entries = new Map<string, ZipEntry>();
    let p = 0;
    const dec = new TextDecoder();
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || dv.getUint32(p, true) !== 0x02014b50) {
        throw new Error(`${path}: corrupt central directory (entry ${i})`);
      }
      const method = dv.getUint16(p + 10, true);
      let compressedSize = dv.getUint32(p + 20, true), sz = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true), extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      let headerOffset = dv.getUint32(p + 42, true);
      const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field: the 0xffffffff fields, in order size, compressed size, header offset.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = dv.getUint16(e, true), len = dv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          if (sz === 0xffffffff) (sz = u64(dv, q), q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = u64(dv, q), q += 8);
          if (headerOffset === 0xffffffff) headerOffset = u64(dv, q);
        }
        e += 4 + len;
      }
      if (headerOffset + compressedSize > size) {
        throw new Error(`${path}: entry '${name}' runs past the end of the file`);
      }
      entries.set(name, { name, method, compressedSize, size: sz, headerOffset });
      p = eEnd + commentLen;
    }
    return entries;
  }

  /** The first entry whose name matches `pattern`. */
  find(pattern: RegExp): ZipEntry | undefined {
    for (const e of this.entries.values()) if (pattern.test(e.name)) return e;
    return undefined;
  }

  async #start(entry: ZipEntry): Promise<number> {
    let s = this.#dataStart.get(entry.name);
    if (s !== undefined) return s;
    const h = await readAt(this.#file, entry.headerOffset, 30, this.path);
    const dv = new DataView(h.buffer);
    if (dv.getUint32(0, true) !== 0x04034b50) {
      throw new Error(`${this.path}: bad local header of '${entry.name}'`);
    }
    s = entry.headerOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    this.#dataStart.set(entry.name, s);
    return s;
  }

  /** Reads bytes [start, start + length) of a stored entry. */
  async readRange(entry: ZipEntry, start: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
    if (entry.method !== 0) {
      throw new Error(`${this.path}: entry '${entry.name}' is compressed (method ${entry.method})`);
    }
    if (start < 0 || start + length > entry.size) {
      throw new Error(
        `${this.path}: range [${start}, ${start + length}) is outside '${entry.name}' (${entry.size} bytes)`,
      );
    }
    return await readAt(this.#file, (await this.#start(entry)) + start, length, this.path);
  }

  /** Reads a whole entry (stored or deflated). */
  async readAll(entry: ZipEntry): Promise<Uint8Array<ArrayBuffer>> {
    if (entry.method === 0) return await this.readRange(entry, 0, entry.size);
    if (entry.method !== 8) {
      throw new Error(`${this.path}: entry '${entry.name}' uses unsupported method ${entry.method}`);
    }
    const raw = await readAt(this.#file, await this.#start(entry), entry.compressedSize, this.path);
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** Closes the archive. */
  [Symbol.dispose](): void {
    this.#file.close();
  }
}
