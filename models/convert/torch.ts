/**
 * PyTorch checkpoint files (`pytorch_model*.bin`, `consolidated.NN.pth`) read without Python: the zip
 * archive `torch.save` writes, its `data.pkl` unpickled under a whitelist (`collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`, typed storages), and each tensor read
 * lazily from its storage member as fp32 (bf16/fp16 widened exactly). Only state dicts of tensors are
 * accepted; the legacy pre-1.6 format and big-endian archives are refused.
 *
 * @module
 */
import { join } from "node:path";
import { decodeInto, DTYPE_BYTES } from "../safetensors.ts";
import { PyDict, PyGlobal, PyTuple, type PyValue, unpickle } from "./pickle.ts";
import type { TensorInfo, TensorSource } from "./source.ts";
import { ZipReader } from "./zip.ts";

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: "F32",
  BFloat16Storage: "BF16",
  HalfStorage: "F16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

interface StorageRef {
  readonly kind: "storage";
  dtype: string;
  key: string;
  numel: number;
}

interface TensorRef {
  readonly kind: "tensor";
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

const ALLOWED = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

const ints = (v: PyValue, what: string): number[] => {
  if (!(v instanceof PyTuple) || !v.items.every((x) => Number.isSafeInteger(x))) {
    throw new Error(`${what} is not a tuple of integers`);
  }
  return v.items as number[];
};

/**
 * Parses a `data.pkl` stream into tensor references by name (exported for tests).
 *
 * @example
 * ```ts ignore
 * import { parseStateDict } from "./torch.ts";
 * const pkl = Deno.readFileSync("archive/data.pkl");
 * console.log([...parseStateDict(pkl, "data.pkl").keys()]);
 * ```
 */
export function parseStateDict(pkl: Uint8Array, where: string): Map<string, TensorRef> {
  const root = unpickle(pkl, where, {
    allowGlobal: (g) => ALLOWED.has(String(g)),
    persistentLoad(pid) {
      if (!(pid instanceof PyTuple) || pid.items[0] !== "storage" || pid.items.length < 5) {
        throw new Error(`${where}: unsupported persistent id`);
      }
      const [, type, key, , numel] = pid.items;
      const dtype = type instanceof PyGlobal ? STORAGE_DTYPES[type.name] : undefined;
      if (!dtype || typeof key !== "string" || !Number.isSafeInteger(numel)) {
        throw new Error(`${where}: unsupported storage ${String(type)}`);
      }
      return { kind: "storage", dtype, key, numel: numel as number } satisfies StorageRef;
    },
    call(fn, args) {
      switch (String(fn)) {
        case "collections.OrderedDict":
          return new PyDict();
        case "torch._utils._rebuild_parameter":
          return args[0];
        case "torch._utils._rebuild_tensor_v2": {
          const [storage, offset, size, stride] = args;
          if ((storage as StorageRef)?.kind !== "storage" || !Number.isSafeInteger(offset)) {
            throw new Error(`${where}: malformed _rebuild_tensor_v2 arguments`);
          }
          return {
            kind: "tensor",
            storage: storage as StorageRef,
            offset: offset as number,
            shape: ints(size, `${where}: tensor size`),
            stride: ints(stride, `${where}: tensor stride`),
          } satisfies TensorRef;
        }
      }
      throw new Error(`${where}: refusing to call ${fn}`);
    },
    build(obj, _state) {
      if (obj instanceof PyDict) return obj; // OrderedDict's __dict__ (state_dict._metadata): not needed
      throw new Error(`${where}: BUILD of an unsupported object`);
    },
  });
  if (!(root instanceof PyDict)) {
    throw new Error(`${where}: the pickle is not a state dict (a dict of tensors)`);
  }
  const out = new Map<string, TensorRef>();
  for (const [k, v] of root.map) {
    if (typeof k !== "string") throw new Error(`${where}: non-string key in the state dict`);
    if ((v as TensorRef)?.kind !== "tensor") throw new Error(`${where}: entry '${k}' is not a tensor`);
    out.set(k, v as TensorRef);
  }
  return out;
}

/**
 * One `torch.save` file opened for lazy tensor reads.
 *
 * @example
 * ```ts ignore
 * using f = await TorchFile.open("consolidated.00.pth");
 * const wq = await f.read("layers.0.attention.wq.weight");
 * ```
 */
export class TorchFile implements TensorSource {
  readonly #zip: ZipReader;
  readonly #prefix: string;
  readonly #tensors: Map<string, TensorRef>;

  private constructor(zip: ZipReader, prefix: string, tensors: Map<string, TensorRef>) {
    this.#zip = zip;
    this.#prefix = prefix;
    this.#tensors = tensors;
  }

  /** Opens and parses `path`. */
  static async open(path: string): Promise<TorchFile> {
    let zip: ZipReader;
    try {
      zip = await ZipReader.open(path);
    } catch (e) {
      const head = await Deno.open(path).then(async (f) => {
        using file = f;
        const b = new Uint8Array(2);
        await file.read(b);
        return b;
      }, () => new Uint8Array(2));
      if (head[0] === 0x80) {
        throw new Error(`${path}: legacy (pre-1.6) torch.save format; re-save it with torch>=1.6`);
      }
      throw e;
    }
    try {
      const pkl = zip.find(/^[^/]+\/data\.pkl$/);
      if (!pkl) throw new Error(`${path}: zip archive without data.pkl (not a torch.save file)`);
      const prefix = pkl.name.slice(0, -"data.pkl".length);
      const order = zip.entries.get(`${prefix}byteorder`);
      if (order && new TextDecoder().decode(await zip.readAll(order)).trim() !== "little") {
        throw new Error(`${path}: big-endian tensors are not supported`);
      }
      const tensors = parseStateDict(await zip.readAll(pkl), path);
      return new TorchFile(zip, prefix, tensors);
    } catch (e) {
      zip[Symbol.dispose]();
      throw e;
    }
  }

  /** Tensors in pickle order. */
  list(): TensorInfo[] {
    return [...this.#tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: t.storage.dtype }));
  }

  /** Reads a tensor as fp32 (any stride; contiguous ones in one read). */
  async read(name: string): Promise<Float32Array<ArrayBuffer>> {
    const t = this.#tensors.get(name);
    if (!t) throw new Error(`${this.#zip.path}: no tensor '${name}'`);
    const width = DTYPE_BYTES[t.storage.dtype];
    const entry = this.#zip.entries.get(`${this.#prefix}data/${t.storage.key}`);
    if (!entry) throw new Error(`${this.#zip.path}: storage ${t.storage.key} of '${name}' is missing`);
    if (entry.size !== t.storage.numel * width) {
      throw new Error(
        `${this.#zip.path}: storage ${t.storage.key} has ${entry.size} bytes, expected ${
          t.storage.numel * width
        }`,
      );
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    if (n === 0) return out;
    const extent = 1 + t.shape.reduce((a, s, i) => a + (s - 1) * t.stride[i], 0);
    if (t.offset < 0 || t.offset + extent > t.storage.numel || t.stride.some((s) => s < 0)) {
      throw new Error(`${this.#zip.path}: tensor '${name}' lies outside its storage`);
    }
    const bytes = await this.#zip.readRange(entry, t.offset * width, extent * width);
    let expect = 1;
    const contiguous = t.shape.every((_, i) => {
      const d = t.shape.length - 1 - i;
      const ok = t.shape[d] === 1 || t.stride[d] === expect;
      expect *= t.shape[d];
      return ok;
    });
    if (contiguous) {
      decodeInto(bytes, t.storage.dtype, out);
      return out;
    }
    const all = new Float32Array(extent);
    decodeInto(bytes, t.storage.dtype, all);
    const idx = new Array(t.shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let src = 0;
      for (let d = 0; d < idx.length; d++) src += idx[d] * t.stride[d];
      out[i] = all[src];
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  /** Closes the archive. */
  [Symbol.dispose](): void {
    this.#zip[Symbol.dispose]();
  }
}

/**
 * Several sources read as one (e.g. the shards of a `.bin` set); a name in two sources is an error.
 *
 * @example
 * ```ts ignore
 * using all = new MergedSource([await TorchFile.open("a.bin"), await TorchFile.open("b.bin")]);
 * ```
 */
export class MergedSource implements TensorSource {
  readonly #where = new Map<string, TensorSource>();
  readonly #list: TensorInfo[] = [];
  readonly #sources: TensorSource[];

  /** Merges `sources` (disposed together). */
  constructor(sources: TensorSource[]) {
    this.#sources = sources;
    for (const s of sources) {
      for (const t of s.list()) {
        if (this.#where.has(t.name)) throw new Error(`tensor '${t.name}' appears in two files`);
        this.#where.set(t.name, s);
        this.#list.push(t);
      }
    }
  }

  /** Every tensor. */
  list(): TensorInfo[] {
    return this.#list;
  }

  /** Reads a tensor from the file holding it. */
  read(name: string): Promise<Float32Array<ArrayBuffer>> {
    const s = this.#where.get(name);
    return s ? s.read(name) : Promise.reject(new Error(`no tensor '${name}'`));
  }

  /** Closes every source. */
  [Symbol.dispose](): void {
    for (const s of this.#sources) s[Symbol.dispose]();
  }
}

/**
 * Opens the PyTorch weights of a Hugging Face directory (`pytorch_model.bin`, or the shards listed in
 * `pytorch_model.bin.index.json`); undefined when there are none.
 *
 * @example
 * ```ts ignore
 * import { openHfBin } from "./torch.ts";
 * using src = (await openHfBin("Llama-2-7b-hf"))!;
 * console.log(src.list().length);
 * ```
 */
export async function openHfBin(dir: string): Promise<TensorSource | undefined> {
  const indexPath = join(dir, "pytorch_model.bin.index.json");
  let files: string[];
  if (await Deno.stat(indexPath).then(() => true, () => false)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await Deno.readTextFile(indexPath));
    } catch (e) {
      throw new Error(`${indexPath}: invalid JSON (${(e as Error).message})`);
    }
    files = [...new Set(Object.values(index.weight_map ?? {}))];
    if (!files.length) throw new Error(`${indexPath}: empty weight_map`);
  } else if (await Deno.stat(join(dir, "pytorch_model.bin")).then(() => true, () => false)) {
    files = ["pytorch_model.bin"];
  } else {
    return undefined;
  }
  const opened: TensorSource[] = [];
  try {
    for (const f of files) opened.push(await TorchFile.open(join(dir, f)));
    return new MergedSource(opened);
  } catch (e) {
    for (const s of opened) s[Symbol.dispose]();
    throw e;
  }
}
