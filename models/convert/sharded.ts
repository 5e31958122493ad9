/**
 * Sharded safetensors sets as Hugging Face writes them: `model-00001-of-00003.safetensors` … plus
 * `model.safetensors.index.json` (`{"metadata": {"total_size": N}, "weight_map": {tensor: file}}`), or a single
 * `model.safetensors`. The writer plans the shards from the declared shapes (greedy, in order, each at most
 * `maxShardBytes` unless one tensor alone is larger) and then streams tensors one at a time.
 *
 * @module
 */
import { join } from "node:path";
import {
  DTYPE_BYTES,
  numel,
  SafetensorsReader,
  type TensorDecl,
  type TensorToWrite,
  writeSafetensors,
} from "../safetensors.ts";
import type { TensorInfo, TensorSource } from "./source.ts";

/** Name of the index file of a sharded set. */
export const INDEX_FILE = "model.safetensors.index.json";

/** Contents of `model.safetensors.index.json`. */
export interface ShardIndex {
  /** `total_size`: bytes of all tensors. */
  metadata: { total_size: number; [k: string]: unknown };
  /** Tensor name → shard file name. */
  weight_map: Record<string, string>;
}

/**
 * Parses a size such as `5GB`, `500MB`, `2GiB` or a plain byte count (decimal units as in transformers).
 *
 * @example
 * ```ts
 * import { parseSize } from "./sharded.ts";
 * console.log(parseSize("5GB")); // 5000000000
 * ```
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$/i.exec(text);
  if (!m) throw new Error(`invalid size '${text}' (examples: 5GB, 500MB, 1048576)`);
  const unit = (m[2] ?? "").toLowerCase().replace(/b$/, "");
  const scale: Record<string, number> = {
    "": 1,
    k: 1e3,
    m: 1e6,
    g: 1e9,
    t: 1e12,
    ki: 1024,
    mi: 1024 ** 2,
    gi: 1024 ** 3,
    ti: 1024 ** 4,
  };
  if (!(unit in scale)) throw new Error(`invalid size '${text}' (examples: 5GB, 500MB, 1048576)`);
  const n = Math.floor(Number(m[1]) * scale[unit]);
  if (n < 1) throw new Error(`invalid size '${text}': must be at least 1 byte`);
  return n;
}

/**
 * Splits `decls` into consecutive groups of at most `maxBytes` (a larger tensor gets a group of its own).
 *
 * @example
 * ```ts
 * import { planShards } from "./sharded.ts";
 * const groups = planShards([{ name: "a", shape: [4] }, { name: "b", shape: [4] }], 16);
 * console.log(groups.length); // 2
 * ```
 */
export function planShards(decls: readonly TensorDecl[], maxBytes: number): TensorDecl[][] {
  const groups: TensorDecl[][] = [];
  let cur: TensorDecl[] = [], bytes = 0;
  for (const d of decls) {
    const b = numel(d.shape) * DTYPE_BYTES[d.dtype ?? "F32"];
    if (cur.length && bytes + b > maxBytes) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(d);
    bytes += b;
  }
  if (cur.length || !groups.length) groups.push(cur);
  return groups;
}

/**
 * Shard file name in the Hugging Face pattern.
 *
 * @example
 * ```ts
 * import { shardFileName } from "./sharded.ts";
 * console.log(shardFileName(0, 3)); // model-00001-of-00003.safetensors
 * ```
 */
export const shardFileName = (i: number, n: number): string =>
  `model-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;

/**
 * Writes `decls` as a sharded set into the existing directory `dir` (a single `model.safetensors` when it
 * fits in one shard and `alwaysIndex` is false). `read(name)` is called once per tensor, in order.
 * Returns the file names written.
 *
 * @example
 * ```ts ignore
 * await writeShardedSafetensors(dir, [{ name: "w", shape: [4], dtype: "BF16" }], () => Promise.resolve(new Float32Array(4)), { maxShardBytes: 5e9 });
 * ```
 */
export async function writeShardedSafetensors(
  dir: string,
  decls: readonly TensorDecl[],
  read: (name: string) => Promise<Float32Array>,
  opts: { maxShardBytes: number; metadata?: Record<string, string>; alwaysIndex?: boolean },
): Promise<string[]> {
  const groups = planShards(decls, opts.maxShardBytes);
  const single = groups.length === 1 && !opts.alwaysIndex;
  const files: string[] = [];
  const index: ShardIndex = { metadata: { total_size: 0 }, weight_map: {} };
  for (let g = 0; g < groups.length; g++) {
    const file = single ? "model.safetensors" : shardFileName(g, groups.length);
    files.push(file);
    const group = groups[g];
    const produce = async function* (): AsyncGenerator<TensorToWrite> {
      for (const d of group) yield { name: d.name, shape: d.shape, dtype: d.dtype, data: await read(d.name) };
    };
    await writeSafetensors(join(dir, file), produce, opts.metadata ?? { format: "pt" }, group);
    for (const d of group) {
      index.weight_map[d.name] = file;
      index.metadata.total_size += numel(d.shape) * DTYPE_BYTES[d.dtype ?? "F32"];
    }
  }
  if (!single) {
    await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify(index, null, 2) + "\n");
    files.push(INDEX_FILE);
  }
  return files;
}

/**
 * Reads a Hugging Face safetensors directory (index + shards, or one `model.safetensors`) or a single file.
 *
 * @example
 * ```ts ignore
 * using src = await ShardedSafetensors.open("Llama-2-7b-hf");
 * for (const t of src.list()) console.log(t.name, t.shape, t.dtype);
 * ```
 */
export class ShardedSafetensors implements TensorSource {
  readonly #readers: SafetensorsReader[];
  readonly #where = new Map<string, SafetensorsReader>();
  readonly #order: TensorInfo[] = [];

  private constructor(readers: SafetensorsReader[], weightMap?: Record<string, string>, indexPath?: string) {
    this.#readers = readers;
    const byFile = new Map(readers.map((r) => [r.path, r]));
    for (const r of readers) {
      for (const [name, e] of r.header.tensors) {
        if (this.#where.has(name)) {
          throw new Error(`${r.path}: tensor '${name}' also appears in another shard`);
        }
        this.#where.set(name, r);
        this.#order.push({ name, shape: e.shape, dtype: e.dtype });
      }
    }
    if (weightMap && indexPath) {
      for (const [name, file] of Object.entries(weightMap)) {
        const r = this.#where.get(name);
        if (!r || r !== byFile.get(join(indexPath, "..", file))) {
          throw new Error(`${indexPath}: tensor '${name}' is not in ${file}`);
        }
      }
      if (Object.keys(weightMap).length !== this.#where.size) {
        throw new Error(`${indexPath}: the shards hold tensors the weight_map does not list`);
      }
    }
  }

  /** Opens `path`: a directory with an index or `model.safetensors`, or a `.safetensors` file. */
  static async open(path: string): Promise<ShardedSafetensors> {
    const st = await Deno.stat(path).catch(() => null);
    if (!st) throw new Error(`${path}: no such file or directory`);
    if (st.isFile) return new ShardedSafetensors([await SafetensorsReader.open(path)]);
    const indexPath = join(path, INDEX_FILE);
    const readers: SafetensorsReader[] = [];
    try {
      if (await Deno.stat(indexPath).then(() => true, () => false)) {
        let index: ShardIndex;
        try {
          index = JSON.parse(await Deno.readTextFile(indexPath));
        } catch (e) {
          throw new Error(`${indexPath}: invalid JSON (${(e as Error).message})`);
        }
        if (typeof index?.weight_map !== "object" || index.weight_map === null) {
          throw new Error(`${indexPath}: no weight_map`);
        }
        const files = [...new Set(Object.values(index.weight_map))];
        for (const f of files) {
          if (typeof f !== "string" || f.includes("/")) {
            throw new Error(`${indexPath}: bad shard name '${f}'`);
          }
          readers.push(await SafetensorsReader.open(join(path, f)));
        }
        return new ShardedSafetensors(readers, index.weight_map, join(indexPath));
      }
      const single = join(path, "model.safetensors");
      if (!await Deno.stat(single).then(() => true, () => false)) {
        throw new Error(`${path}: neither ${INDEX_FILE} nor model.safetensors`);
      }
      readers.push(await SafetensorsReader.open(single));
      return new ShardedSafetensors(readers);
    } catch (e) {
      for (const r of readers) r[Symbol.dispose]();
      throw e;
    }
  }

  /** Every tensor, shard by shard in file order. */
  list(): TensorInfo[] {
    return this.#order;
  }

  /** Reads a tensor as fp32. */
  read(name: string): Promise<Float32Array<ArrayBuffer>> {
    const r = this.#where.get(name);
    if (!r) return Promise.reject(new Error(`no tensor '${name}' in the safetensors set`));
    return r.read(name);
  }

  /** Closes every shard. */
  [Symbol.dispose](): void {
    for (const r of this.#readers) r[Symbol.dispose]();
  }
}
