/**
 * Training checkpoints in the layout of DESIGN.md §6:
 * `RUN/checkpoints/iter_0000200/{meta.json, model-tp00-pp00.safetensors, optim-tp00-pp00-dp00.safetensors}`
 * and `RUN/checkpoints/latest` (the name of the newest complete checkpoint directory).
 * A checkpoint is written into a temp directory, every file fsynced, then renamed into place; `latest` is
 * replaced atomically last. Loading verifies the sha256 of every shard recorded in meta.json.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { NativeModel } from "../runtime/model.ts";
import type { Device } from "../runtime/ffi.ts";
import { modelDims, optimSettings, presetConfig, type RunConfig } from "./config.ts";
import { SafetensorsReader, writeSafetensors } from "./safetensors.ts";
import { NativeCheckpointReader } from "./convert/native.ts";

/** Version of the checkpoint layout written by this module. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Parallel layout a checkpoint was written with. */
export interface CheckpointTopology {
  /** Tensor-parallel size. */
  tp: number;
  /** Pipeline-parallel size. */
  pp: number;
  /** Data-parallel size. */
  dp: number;
  /** Optimizer state sharded over DP (ZeRO-1). */
  zero1?: boolean;
}

/** Training state stored next to the tensors. */
export interface TrainState {
  /** Completed optimizer steps. */
  iteration: number;
  /** Training samples consumed so far (data order is a pure function of this). */
  consumedSamples: number;
  /** Opaque data-pipeline state (seed, source, split…). */
  data: Record<string, unknown>;
}

/** Contents of meta.json. */
export interface CheckpointMeta {
  /** Always "meditron-checkpoint". */
  format: string;
  /** {@linkcode CHECKPOINT_FORMAT_VERSION}. */
  format_version: number;
  /** Completed optimizer steps. */
  iteration: number;
  /** Samples consumed. */
  consumed_samples: number;
  /** Resolved run configuration. */
  config: RunConfig;
  /** Layout of the shards. */
  topology: CheckpointTopology;
  /** Data-pipeline state. */
  data: Record<string, unknown>;
  /** sha256 and size of every shard file. */
  shards: Record<string, { sha256: string; bytes: number }>;
  /** ISO time of writing. */
  created: string;
}

const pad2 = (n: number) => String(n).padStart(2, "0");
/** Model shard file name for a (tp, pp) rank. */
export const modelShardName = (tp: number, pp: number): string =>
  `model-tp${pad2(tp)}-pp${pad2(pp)}.safetensors`;
/** Optimizer shard file name for a (tp, pp, dp) rank. */
export const optimShardName = (tp: number, pp: number, dp: number): string =>
  `optim-tp${pad2(tp)}-pp${pad2(pp)}-dp${pad2(dp)}.safetensors`;
/** Directory name of iteration `it`. */
export const iterDirName = (it: number): string => `iter_${String(it).padStart(7, "0")}`;

/** sha256 (hex) and size of a file, read in 1 MiB pieces. */
export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
    bytes += n;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** fsync of a file or directory (best effort for directories). */
async function fsyncPath(path: string): Promise<void> {
  try {
    using f = await Deno.open(path, { read: true });
    await f.sync();
  } catch { /* directories cannot be fsynced on every platform; best effort */ }
}

/** Writes a text file and fsyncs it. */
async function writeTextDurable(path: string, text: string): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  await f.write(new TextEncoder().encode(text));
  await f.sync();
}

/** How ranks of a multi-process job coordinate a checkpoint (omit for one process). */
export interface CheckpointSync {
  /** Barrier over all ranks that resolves to true on every rank when every rank passed `ok` (`distAllOk`). */
  allOk(ok: boolean): Promise<boolean>;
}

const ONE_PROCESS: CheckpointSync = { allOk: (ok) => Promise.resolve(ok) };

/**
 * Runs `work` on this rank (or nothing when `work` is undefined), then agrees with every rank on success, so
 * that all ranks fail together instead of some waiting at a barrier a failed rank never reaches. Throws this
 * rank's own error, or one saying that `what` failed on another rank.
 */
async function together(sync: CheckpointSync, what: string, work?: () => Promise<void>): Promise<void> {
  let error: unknown;
  try {
    await work?.();
  } catch (e) {
    error = e;
  }
  const allOk = await sync.allOk(error === undefined);
  if (error !== undefined) throw error;
  if (!allOk) throw new Error(`${what} failed on another rank (its log says why)`);
}

// This rank's shard files: the model shard is written by DP rank 0 (replicas are identical); the optimizer
// shard by every DP rank under ZeRO-1 (each holds a chunk), else by DP rank 0.
function shardFiles(model: NativeModel): { modelFile?: string; optimFile?: string } {
  const r = model.rank;
  return {
    modelFile: r.dpRank === 0 ? modelShardName(r.tpRank, r.ppRank) : undefined,
    optimFile: r.dpRank === 0 || r.zero1
      ? optimShardName(r.tpRank, r.ppRank, r.zero1 ? r.dpRank : 0)
      : undefined,
  };
}

async function writeShards(dir: string, model: NativeModel): Promise<void> {
  const params = model.params();
  const { modelFile, optimFile } = shardFiles(model);
  if (modelFile) {
    await writeSafetensors(
      join(dir, modelFile),
      () => params.map((p) => ({ name: p.name, shape: p.shape, data: model.read(p.name) })),
      { format: "pt" },
      params.map((p) => ({ name: p.name, shape: p.shape })),
    );
  }
  if (!optimFile) return;
  const chunk = model.optimChunk;
  if (model.rank.zero1) {
    // ZeRO-1: this rank's flat chunk of the moments over the flat parameter buffer of its (tp, pp) shard.
    await writeSafetensors(
      join(dir, optimFile),
      [
        { name: "exp_avg", shape: [chunk.length], data: model.readOptimChunk("adamM") },
        { name: "exp_avg_sq", shape: [chunk.length], data: model.readOptimChunk("adamV") },
      ],
      {
        step: String(model.step),
        zero1: "1",
        offset: String(chunk.offset),
        flat_size: String(chunk.flatSize),
      },
    );
    return;
  }
  await writeSafetensors(
    join(dir, optimFile),
    () =>
      params.flatMap((p) => [
        { name: `${p.name}.exp_avg`, shape: p.shape, data: model.read(p.name, "adamM") },
        { name: `${p.name}.exp_avg_sq`, shape: p.shape, data: model.read(p.name, "adamV") },
      ]),
    { step: String(model.step) },
    params.flatMap((p) => [
      { name: `${p.name}.exp_avg`, shape: p.shape },
      { name: `${p.name}.exp_avg_sq`, shape: p.shape },
    ]),
  );
}

/**
 * Makes a fully written checkpoint visible: writes `meta.json` into the temp directory `tmp`, fsyncs it, renames
 * it to `root/iter_XXXXXXX` (replacing an older one of the same iteration) and moves `root/latest` to it last.
 * Returns the final directory.
 */
export async function publishCheckpoint(root: string, tmp: string, meta: CheckpointMeta): Promise<string> {
  const final = join(root, iterDirName(meta.iteration));
  await writeTextDurable(join(tmp, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
  await fsyncPath(tmp);
  await Deno.remove(final, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, final);
  await fsyncPath(root);
  const latestTmp = join(root, `.latest.tmp-${Deno.pid}`);
  await writeTextDurable(latestTmp, iterDirName(meta.iteration) + "\n");
  await Deno.rename(latestTmp, join(root, "latest"));
  await fsyncPath(root);
  return final;
}

/**
 * Saves the model, its AdamW state and the training state; returns the checkpoint directory. In a
 * multi-rank job every rank calls it: rank 0 prepares the temp directory, each rank writes its shards, and
 * rank 0 writes meta.json (with every shard's sha256), renames the directory and moves `latest` last.
 *
 * @example
 * ```ts ignore
 * const dir = await saveCheckpoint("runs/tiny", model, cfg, { iteration: 100, consumedSamples: 800, data: {} });
 * ```
 */
export async function saveCheckpoint(
  runDir: string,
  model: NativeModel,
  config: RunConfig,
  state: TrainState,
  sync: CheckpointSync = ONE_PROCESS,
): Promise<string> {
  const root = join(runDir, "checkpoints");
  const tmp = join(root, `.${iterDirName(state.iteration)}.tmp`);
  const r = model.rank;
  const leader = r.worldRank === 0;
  const prepare = async () => {
    await Deno.mkdir(root, { recursive: true });
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.mkdir(tmp);
  };
  const publish = async () => {
    const shards: CheckpointMeta["shards"] = {};
    for (const e of [...Deno.readDirSync(tmp)].sort((x, y) => x.name.localeCompare(y.name))) {
      shards[e.name] = await sha256File(join(tmp, e.name));
    }
    await publishCheckpoint(root, tmp, {
      format: "meditron-checkpoint",
      format_version: CHECKPOINT_FORMAT_VERSION,
      iteration: state.iteration,
      consumed_samples: state.consumedSamples,
      config,
      topology: { tp: r.tp, pp: r.pp, dp: r.dp, zero1: r.zero1 },
      data: state.data,
      shards,
      created: new Date().toISOString(),
    });
  };
  // Rank 0 prepares and publishes, every rank writes its shards; all ranks agree after each stage.
  await together(sync, `preparing ${tmp}`, leader ? prepare : undefined);
  try {
    await together(sync, `writing a shard of ${tmp}`, () => writeShards(tmp, model));
    await together(sync, `publishing ${tmp}`, leader ? publish : undefined);
    return join(root, iterDirName(state.iteration));
  } catch (e) {
    if (leader) await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Resolves a checkpoint directory from a run directory (its `checkpoints/latest`), a `checkpoints/`
 * directory (its `latest`) or an `iter_*` directory.
 */
export async function resolveCheckpoint(path: string): Promise<string> {
  const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
  if (await isFile(join(path, "meta.json"))) return path;
  for (const root of [join(path, "checkpoints"), path]) {
    const latest = join(root, "latest");
    if (await isFile(latest)) {
      const name = (await Deno.readTextFile(latest)).trim();
      if (!/^iter_\d{7}$/.test(name)) throw new Error(`${latest}: does not name a checkpoint ('${name}')`);
      return join(root, name);
    }
  }
  throw new Error(`${path}: no checkpoint found (no meta.json, checkpoints/latest or latest)`);
}

/**
 * The newest checkpoint of a run whose meta.json reads and whose every shard matches its recorded sha256
 * (for `--resume auto` after a crash that damaged the latest one); throws when none is valid.
 *
 * @example
 * ```ts ignore
 * const dir = await newestValidCheckpoint("runs/tiny");
 * ```
 */
export async function newestValidCheckpoint(
  runDir: string,
  onSkip?: (dir: string, why: string) => void,
): Promise<string> {
  const root = join(runDir, "checkpoints");
  let names: string[];
  try {
    names = [...Deno.readDirSync(root)].filter((e) => e.isDirectory && /^iter_\d{7}$/.test(e.name)).map((e) =>
      e.name
    );
  } catch {
    throw new Error(`${runDir}: no checkpoints directory`);
  }
  for (const name of names.sort().reverse()) {
    const dir = join(root, name);
    try {
      const meta = await readCheckpointMeta(dir);
      for (const [file, want] of Object.entries(meta.shards)) {
        const got = await sha256File(join(dir, file));
        if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
          throw new Error(`${file}: sha256 mismatch`);
        }
      }
      return dir;
    } catch (e) {
      onSkip?.(dir, (e as Error).message);
    }
  }
  throw new Error(`${runDir}: no valid checkpoint (every iter_* directory failed verification)`);
}

/** Reads and checks meta.json of a checkpoint directory. */
export async function readCheckpointMeta(dir: string): Promise<CheckpointMeta> {
  const path = join(dir, "meta.json");
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: unreadable checkpoint metadata (${(e as Error).message})`);
  }
  if (meta?.format !== "meditron-checkpoint") throw new Error(`${path}: not a meditron checkpoint`);
  if (meta.format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(
      `${path}: format_version ${meta.format_version}, this toolkit reads ${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
  for (const k of ["iteration", "consumed_samples"] as const) {
    if (!Number.isInteger(meta[k]) || meta[k] < 0) throw new Error(`${path}: '${k}' is missing or invalid`);
  }
  if (typeof meta.shards !== "object" || meta.shards === null) {
    throw new Error(`${path}: 'shards' is missing`);
  }
  if (typeof meta.config !== "object" || meta.config === null || typeof meta.config.model !== "object") {
    throw new Error(`${path}: 'config' is missing`);
  }
  // Settings the toolkit gained after the checkpoint was written (train.on_save_error, parallel.recompute, …)
  // take their defaults; the architecture is never filled in.
  const base = presetConfig("tiny"), c = meta.config;
  meta.config = {
    ...c,
    train: { ...base.train, ...c.train },
    data: { ...base.data, ...c.data },
    parallel: { ...base.parallel, ...c.parallel },
  };
  return meta;
}

/**
 * Throws unless checkpoint `dir` (its `meta`) was written with the layout `want` (tp, pp, dp, ZeRO-1), naming
 * both layouts and the reshard command.
 *
 * @example
 * ```ts ignore
 * checkLayout("runs/tiny/checkpoints/iter_0000200", meta, { tp: 2, pp: 1, dp: 1, zero1: false });
 * ```
 */
export function checkLayout(
  dir: string,
  meta: CheckpointMeta,
  want: CheckpointTopology,
): void {
  const t = meta.topology, zero1 = Boolean(want.zero1);
  if (t?.tp !== want.tp || t?.pp !== want.pp || t?.dp !== want.dp || Boolean(t?.zero1) !== zero1) {
    throw new Error(
      `${dir}: written with tp=${t?.tp} pp=${t?.pp} dp=${t?.dp} zero1=${Boolean(t?.zero1)}, this run is ` +
        `tp=${want.tp} pp=${want.pp} dp=${want.dp} zero1=${zero1} (change layouts with 'deno task convert ` +
        `reshard')`,
    );
  }
}

/** Options of {@linkcode loadCheckpoint}. */
export interface LoadOptions {
  /** Verify the sha256 of every shard (default true). */
  verify?: boolean;
  /** Device of a model that {@linkcode openModel} creates (default "cpu"). */
  device?: Device;
}

/**
 * Loads this rank's parameters, AdamW moments and the step counter from checkpoint `dir` into `model` (same
 * architecture and topology); returns its metadata. The rank's shards are verified before any tensor is
 * written.
 */
export async function loadCheckpoint(
  dir: string,
  model: NativeModel,
  opts: LoadOptions = {},
): Promise<CheckpointMeta> {
  const meta = await readCheckpointMeta(dir);
  const r = model.rank;
  checkLayout(dir, meta, r);
  const modelFile = modelShardName(r.tpRank, r.ppRank);
  const optimFile = optimShardName(r.tpRank, r.ppRank, r.zero1 ? r.dpRank : 0);
  for (const f of [modelFile, optimFile]) {
    const want = meta.shards[f];
    if (!want) throw new Error(`${join(dir, "meta.json")}: no entry for shard ${f}`);
    if (opts.verify ?? true) {
      const got = await sha256File(join(dir, f)).catch((e) => {
        throw new Error(`${join(dir, f)}: cannot read shard (${(e as Error).message})`);
      });
      if (got.sha256 !== want.sha256 || got.bytes !== want.bytes) {
        throw new Error(`${join(dir, f)}: sha256 mismatch — the shard is corrupt (use --no-verify to skip)`);
      }
    }
  }
  using mr = await SafetensorsReader.open(join(dir, modelFile));
  using or = await SafetensorsReader.open(join(dir, optimFile));
  for (const p of model.params()) {
    const entry = mr.header.tensors.get(p.name);
    if (!entry) throw new Error(`${join(dir, modelFile)}: missing tensor '${p.name}'`);
    if (entry.shape.join("x") !== p.shape.join("x")) {
      throw new Error(
        `${
          join(dir, modelFile)
        }: tensor '${p.name}' has shape [${entry.shape}], the model expects [${p.shape}]`,
      );
    }
  }
  for (const p of model.params()) model.write(p.name, await mr.readF32(p.name));
  if (r.zero1) {
    const chunk = model.optimChunk;
    if (Number(or.header.metadata.offset) !== chunk.offset) {
      throw new Error(
        `${join(dir, optimFile)}: chunk offset ${or.header.metadata.offset}, expected ${chunk.offset}`,
      );
    }
    model.writeOptimChunk("adamM", await or.readF32("exp_avg"));
    model.writeOptimChunk("adamV", await or.readF32("exp_avg_sq"));
  } else {
    for (const p of model.params()) {
      model.write(p.name, await or.readF32(`${p.name}.exp_avg`), "adamM");
      model.write(p.name, await or.readF32(`${p.name}.exp_avg_sq`), "adamV");
    }
  }
  const step = Number(or.header.metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new Error(`${join(dir, optimFile)}: metadata 'step' is missing`);
  }
  model.step = step;
  return meta;
}

/** A model opened from a checkpoint, with where it came from. */
export interface OpenedModel {
  /** The model, parameters and optimizer state loaded (one rank). */
  model: NativeModel;
  /** The checkpoint's metadata (its `config` describes the model). */
  meta: CheckpointMeta;
  /** The iter_* directory it was loaded from. */
  dir: string;
}

/**
 * Opens a one-rank model from a run directory, its checkpoints/ or an iter_* directory: creates it with the
 * checkpoint's architecture and loads it (shards verified unless `verify: false`). A checkpoint of any other
 * layout (tensor, pipeline or data parallel, ZeRO-1) is merged on load: every parameter and AdamW moment is
 * reassembled from its shards.
 *
 * @example
 * ```ts ignore
 * const { model, meta } = await openModel("runs/tiny");
 * using m = model;
 * console.log(meta.iteration);
 * ```
 */
export async function openModel(path: string, opts: LoadOptions = {}): Promise<OpenedModel> {
  const dir = await resolveCheckpoint(path);
  const meta = await readCheckpointMeta(dir);
  const cfg = meta.config, t = meta.topology;
  const model = await NativeModel.create(modelDims(cfg.model), optimSettings(cfg.train), {
    seed: cfg.train.seed,
    initStd: cfg.model.init_std,
  }, { tp: 1, pp: 1, dp: 1, device: opts.device ?? "cpu" });
  try {
    if (t?.tp === 1 && t?.pp === 1 && t?.dp === 1 && !t?.zero1) {
      return { model, meta: await loadCheckpoint(dir, model, opts), dir };
    }
    using ck = await NativeCheckpointReader.open(dir, { verify: opts.verify, reuseBuffers: true });
    for (const p of model.params()) {
      model.write(p.name, await ck.param(p.name));
      model.write(p.name, await ck.moment(p.name, "exp_avg"), "adamM");
      model.write(p.name, await ck.moment(p.name, "exp_avg_sq"), "adamV");
    }
    model.step = await ck.step();
    return { model, meta: ck.meta, dir };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
