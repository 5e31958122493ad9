/**
 * Offline access to native checkpoints without a model: write one from full tensors (cut into the (tp, pp)
 * shards and, for the AdamW moments, into per-parameter or ZeRO-1 flat chunks) and read full tensors back by
 * reassembling the shards. Both stream one tensor at a time. The writer follows checkpoint.ts's protocol:
 * temp directory, fsynced files, meta.json with every shard's sha256, rename, `latest` moved last.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMeta,
  type CheckpointTopology as Topology,
  iterDirName,
  modelShardName,
  optimShardName,
  publishCheckpoint,
  readCheckpointMeta,
  sha256File,
} from "../checkpoint.ts";
import type { ModelConfig, RunConfig } from "../config.ts";
import { numel, SafetensorsReader, type TensorToWrite, writeSafetensors } from "../safetensors.ts";
import { allInStep, Lockstep } from "./lockstep.ts";
import {
  flatLayout,
  placeShard,
  type ShardSpec,
  shardSpec,
  sliceShard,
  stageOf,
  stageParams,
} from "./layout.ts";

/** AdamW moment names as stored in optimizer shards. */
export type MomentKind = "exp_avg" | "exp_avg_sq";

/** What a checkpoint is written from: full tensors by name (moments absent = zeros). */
export interface FullTensors {
  /** Full parameter tensor. */
  param(name: string): Promise<Float32Array>;
  /** Full moment tensor, or undefined for zeros (a fresh optimizer). */
  moment?(name: string, kind: MomentKind): Promise<Float32Array>;
}

/** Everything besides tensors that goes into meta.json. */
export interface NativeCheckpointInfo {
  /** Run configuration (its `parallel` section is set to `topology`). */
  config: RunConfig;
  /** Layout to write. */
  topology: Required<Topology>;
  /** Completed steps. */
  iteration: number;
  /** Samples consumed. */
  consumedSamples: number;
  /** Data-pipeline state. */
  data: Record<string, unknown>;
  /** AdamW step counter stored in optimizer shards. */
  step: number;
}

const ZERO_BLOCK = new Float32Array(1 << 20);

/** `n` zeros streamed from one shared block (fresh optimizer state is never allocated whole). */
async function* zeros(n: number): AsyncGenerator<Float32Array> {
  for (let left = n; left > 0; left -= ZERO_BLOCK.length) {
    yield ZERO_BLOCK.subarray(0, Math.min(left, ZERO_BLOCK.length));
  }
}

/** Progress callback: a short description of the piece just done. */
export type Progress = (what: string) => void;

/**
 * Writes a native checkpoint under `runDir/checkpoints/` from full tensors; returns its directory. Nothing
 * is left behind on failure.
 *
 * @example
 * ```ts ignore
 * await writeNativeCheckpoint("runs/imported", info, { param: (n) => hf.read(n) });
 * ```
 */
export async function writeNativeCheckpoint(
  runDir: string,
  info: NativeCheckpointInfo,
  tensors: FullTensors,
  progress: Progress = () => {},
): Promise<string> {
  const m = info.config.model, { tp, pp, dp, zero1 } = info.topology;
  const root = join(runDir, "checkpoints");
  // Every shard is hashed while it is written (no second pass over the bytes).
  const digests = new Map<string, { hash: ReturnType<typeof createHash>; bytes: number }>();
  const hashing = (file: string) => {
    const d = { hash: createHash("sha256"), bytes: 0 };
    digests.set(file, d);
    return {
      onWrite: (b: Uint8Array) => {
        d.hash.update(b);
        d.bytes += b.length;
      },
    };
  };
  const tmp = join(root, `.${iterDirName(info.iteration)}.tmp-${Deno.pid}`);
  await Deno.mkdir(tmp, { recursive: true });
  try {
    for (let p = 0; p < pp; p++) {
      // The TP shards of a stage are written concurrently in lockstep: each full tensor is read once.
      const names = stageParams(m, p, pp);
      const specsOf = (t: number) => names.map((n) => shardSpec(m, n, t, tp));
      const ranks = [...Array(tp).keys()];
      const full = new Lockstep(tp, (i) => tensors.param(names[i]));
      await allInStep(
        [full],
        ranks.map(async (t) => {
          const specs = specsOf(t);
          const params = async function* (): AsyncGenerator<TensorToWrite> {
            for (const [i, s] of specs.entries()) {
              yield { name: s.name, shape: s.shape, data: sliceShard(await full.get(i), s) };
            }
          };
          await writeSafetensors(
            join(tmp, modelShardName(t, p)),
            params,
            { format: "pt" },
            specs,
            hashing(modelShardName(t, p)),
          );
          progress(modelShardName(t, p));
        }),
      );
      if (!zero1) {
        const kinds = ["exp_avg", "exp_avg_sq"] as const;
        const moments = tensors.moment &&
          new Lockstep(tp, (i) => tensors.moment!(names[i >> 1], kinds[i & 1]));
        await allInStep(
          moments ? [moments] : [],
          ranks.map(async (t) => {
            const specs = specsOf(t);
            const produce = async function* (): AsyncGenerator<TensorToWrite> {
              for (const [i, s] of specs.entries()) {
                for (const [k, kind] of kinds.entries()) {
                  const data = moments ? sliceShard(await moments.get(2 * i + k), s) : zeros(numel(s.shape));
                  yield { name: `${s.name}.${kind}`, shape: s.shape, data };
                }
              }
            };
            const decls = specs.flatMap((s) =>
              kinds.map((k) => ({ name: `${s.name}.${k}`, shape: s.shape }))
            );
            await writeSafetensors(
              join(tmp, optimShardName(t, p, 0)),
              produce,
              { step: String(info.step) },
              decls,
              hashing(optimShardName(t, p, 0)),
            );
            progress(optimShardName(t, p, 0));
          }),
        );
        continue;
      }
      for (let t = 0; t < tp; t++) {
        const flat = flatLayout(m, t, tp, p, pp);
        const chunk = Math.ceil(flat.size / dp);
        for (let d = 0; d < dp; d++) {
          const lo = d * chunk, hi = lo + chunk;
          // The chunk [lo, hi) of the flat buffer, streamed parameter by parameter.
          const piece = async function* (kind: MomentKind): AsyncGenerator<Float32Array> {
            let pos = lo;
            for (const s of flat.specs) {
              const end = s.offset + s.flatSize;
              if (end <= lo || s.offset >= hi) continue;
              // The slot holds the stored values, then zeros up to flatSize (padded vocabulary rows).
              const a = Math.max(lo, s.offset) - s.offset, b = Math.min(hi, end) - s.offset;
              const stored = numel(s.shape);
              if (a < stored) {
                const data = tensors.moment ? sliceShard(await tensors.moment(s.name, kind), s) : undefined;
                if (data) yield data.subarray(a, Math.min(b, stored));
                else yield* zeros(Math.min(b, stored) - a);
              }
              if (b > stored) yield* zeros(b - Math.max(a, stored));
              pos = Math.min(hi, end);
            }
            if (pos < hi) yield* zeros(hi - pos);
          };
          await writeSafetensors(
            join(tmp, optimShardName(t, p, d)),
            function* () {
              yield { name: "exp_avg", shape: [chunk], data: piece("exp_avg") };
              yield { name: "exp_avg_sq", shape: [chunk], data: piece("exp_avg_sq") };
            },
            { step: String(info.step), zero1: "1", offset: String(lo), flat_size: String(flat.size) },
            [{ name: "exp_avg", shape: [chunk] }, { name: "exp_avg_sq", shape: [chunk] }],
            hashing(optimShardName(t, p, d)),
          );
          progress(optimShardName(t, p, d));
        }
      }
    }
    const shards: CheckpointMeta["shards"] = {};
    for (const e of [...Deno.readDirSync(tmp)].sort((x, y) => x.name.localeCompare(y.name))) {
      const d = digests.get(e.name);
      if (!d) throw new Error(`${join(tmp, e.name)}: unexpected file in the checkpoint being written`);
      shards[e.name] = { sha256: d.hash.digest("hex"), bytes: d.bytes };
    }
    const config: RunConfig = {
      ...info.config,
      parallel: { ...info.config.parallel, tp, pp, dp, distributed_optimizer: zero1 },
    };
    const meta: CheckpointMeta = {
      format: "meditron-checkpoint",
      format_version: CHECKPOINT_FORMAT_VERSION,
      iteration: info.iteration,
      consumed_samples: info.consumedSamples,
      config,
      topology: { tp, pp, dp, zero1 },
      data: info.data,
      shards,
      created: new Date().toISOString(),
    };
    return await publishCheckpoint(root, tmp, meta);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Reads full tensors out of a native checkpoint of any layout (reassembling TP shards, ZeRO-1 chunks).
 *
 * @example
 * ```ts ignore
 * using ck = await NativeCheckpointReader.open("runs/tiny/checkpoints/iter_0000200");
 * const w = await ck.param("lm_head.weight");
 * ```
 */
export class NativeCheckpointReader implements Disposable {
  /** The checkpoint's meta.json. */
  readonly meta: CheckpointMeta;
  /** The checkpoint directory. */
  readonly dir: string;
  readonly #open = new Map<string, SafetensorsReader>();
  readonly #verify: boolean;

  readonly #reuse: boolean;
  #whole?: Float32Array<ArrayBuffer>;
  #piece?: Float32Array<ArrayBuffer>;

  private constructor(dir: string, meta: CheckpointMeta, verify: boolean, reuse: boolean) {
    this.#reuse = reuse;
    this.dir = dir;
    this.meta = meta;
    this.#verify = verify;
  }

  /**
   * Opens checkpoint directory `dir` (shards are sha256-verified on first use unless `verify` is false).
   * With `reuseBuffers`, every result is a view of one of two buffers reused by the next call (no garbage
   * per tensor: peak memory stays near one full tensor plus one shard); use each result before the next call.
   */
  static async open(
    dir: string,
    opts: { verify?: boolean; reuseBuffers?: boolean } = {},
  ): Promise<NativeCheckpointReader> {
    const meta = await readCheckpointMeta(dir);
    const t = meta.topology;
    const m = meta.config?.model;
    if (!m || !t || !(t.tp >= 1 && t.pp >= 1 && t.dp >= 1) || m.n_layers % t.pp !== 0) {
      throw new Error(`${join(dir, "meta.json")}: missing or inconsistent config/topology`);
    }
    return new NativeCheckpointReader(dir, meta, opts.verify ?? true, opts.reuseBuffers ?? false);
  }

  /** The architecture. */
  get model(): ModelConfig {
    return this.meta.config.model;
  }

  async #reader(file: string): Promise<SafetensorsReader> {
    let r = this.#open.get(file);
    if (r) return r;
    const path = join(this.dir, file);
    const want = this.meta.shards[file];
    if (!want) throw new Error(`${join(this.dir, "meta.json")}: no entry for shard ${file}`);
    if (this.#verify) {
      const got = await sha256File(path).catch((e) => {
        throw new Error(`${path}: cannot read shard (${(e as Error).message})`);
      });
      if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
        throw new Error(`${path}: sha256 mismatch — the shard is corrupt (use --no-verify to skip)`);
      }
    }
    r = await SafetensorsReader.open(path);
    this.#open.set(file, r);
    return r;
  }

  // A buffer of at least n floats: reused (grown as needed) with reuseBuffers, else fresh.
  #buffer(which: "whole" | "piece", n: number): Float32Array<ArrayBuffer> {
    if (!this.#reuse) return new Float32Array(n);
    let b = which === "whole" ? this.#whole : this.#piece;
    if (!b || b.length < n) {
      if (which === "whole") this.#whole = undefined;
      else this.#piece = undefined;
      b = new Float32Array(n);
      if (which === "whole") this.#whole = b;
      else this.#piece = b;
    }
    return b.subarray(0, n);
  }

  async #check(
    r: SafetensorsReader,
    name: string,
    spec: ShardSpec,
    which: "whole" | "piece",
  ): Promise<Float32Array> {
    const e = r.header.tensors.get(name);
    if (!e) throw new Error(`${r.path}: missing tensor '${name}'`);
    if (e.shape.join("x") !== spec.shape.join("x")) {
      throw new Error(
        `${r.path}: tensor '${name}' has shape [${e.shape}], the layout expects [${spec.shape}]`,
      );
    }
    return await r.read(name, this.#buffer(which, numel(spec.shape)));
  }

  /** The full parameter `name`. */
  async param(name: string): Promise<Float32Array> {
    const { tp, pp } = this.meta.topology, m = this.model;
    const p = stageOf(m, name, pp);
    const spec0 = shardSpec(m, name, 0, tp);
    if (spec0.splitDim === -1 || tp === 1) {
      return await this.#check(await this.#reader(modelShardName(0, p)), name, spec0, "whole"); // already whole
    }
    const full = this.#buffer("whole", numel(spec0.fullShape));
    for (let t = 0; t < tp; t++) {
      const spec = shardSpec(m, name, t, tp);
      placeShard(
        full,
        spec,
        await this.#check(await this.#reader(modelShardName(t, p)), name, spec, "piece"),
      );
    }
    return full;
  }

  /** The optimizer step counter. */
  async step(): Promise<number> {
    const r = await this.#reader(optimShardName(0, 0, 0));
    const step = Number(r.header.metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new Error(`${r.path}: metadata 'step' is missing`);
    return step;
  }

  /** The full AdamW moment of parameter `name`. */
  async moment(name: string, kind: MomentKind): Promise<Float32Array> {
    const { tp, pp, dp, zero1 } = this.meta.topology, m = this.model;
    const p = stageOf(m, name, pp);
    const spec0 = shardSpec(m, name, 0, tp);
    if (!zero1 && (spec0.splitDim === -1 || tp === 1)) {
      return await this.#check(
        await this.#reader(optimShardName(0, p, 0)),
        `${name}.${kind}`,
        spec0,
        "whole",
      );
    }
    const full = this.#buffer("whole", numel(spec0.fullShape));
    for (let t = 0; t < (spec0.splitDim === -1 ? 1 : tp); t++) {
      const spec = shardSpec(m, name, t, tp);
      if (!zero1) {
        const r = await this.#reader(optimShardName(t, p, 0));
        placeShard(full, spec, await this.#check(r, `${name}.${kind}`, spec, "piece"));
        continue;
      }
      const flat = flatLayout(m, t, tp, p, pp);
      const s = flat.specs.find((x) => x.name === name)!;
      const chunk = Math.ceil(flat.size / dp);
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const data = this.#buffer("piece", n);
      for (let d = Math.floor(s.offset / chunk); d < dp && d * chunk < s.offset + n; d++) {
        const r = await this.#reader(optimShardName(t, p, d));
        const e = r.header.tensors.get(kind);
        if (
          !e || e.shape.length !== 1 || e.shape[0] !== chunk ||
          Number(r.header.metadata.flat_size) !== flat.size
        ) {
          throw new Error(
            `${r.path}: ZeRO-1 chunk '${kind}' does not match the layout (${chunk} of ${flat.size})`,
          );
        }
        const lo = Math.max(s.offset, d * chunk), hi = Math.min(s.offset + n, (d + 1) * chunk);
        await r.readRange(kind, lo - d * chunk, hi - lo, data.subarray(lo - s.offset));
      }
      placeShard(full, spec, data);
    }
    return full;
  }

  /** Closes every shard. */
  [Symbol.dispose](): void {
    for (const r of this.#open.values()) r[Symbol.dispose]();
    this.#open.clear();
  }
}
