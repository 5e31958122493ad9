/**
 * Run configuration: the model architecture, the training schedule and the data, loaded from YAML with
 * every key checked (unknown keys and wrong types are errors naming the file and key), merged with CLI
 * overrides, and validated before any work starts. Presets: `tiny` (the embedded default), `llama2-7b`,
 * `llama2-13b`, `llama2-70b` with Meditron's pretraining hyperparameters.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import type { Device, ModelDims, OptimSettings, Recompute, Topology } from "../runtime/ffi.ts";

/** Llama-2 architecture (YAML section `model`). */
export interface ModelConfig {
  /** Model width. */
  dim: number;
  /** Transformer blocks. */
  n_layers: number;
  /** Query heads. */
  n_heads: number;
  /** Key/value heads (GQA); divides `n_heads`. */
  n_kv_heads: number;
  /** SwiGLU hidden width. */
  ffn_dim: number;
  /** Vocabulary size (Llama-2: 32000). */
  vocab_size: number;
  /** Longest sequence the model accepts (RoPE table size). */
  max_seq: number;
  /** RMSNorm epsilon. */
  norm_eps: number;
  /** RoPE base θ. */
  rope_theta: number;
  /** Std of the normal init of matrices (o/down: std/√(2·n_layers)); norms start at 1. */
  init_std: number;
}

/** Optimisation and loop cadence (YAML section `train`). */
export interface TrainConfig {
  /** Seed of initialisation and data order. */
  seed: number;
  /** Optimizer steps to run. */
  steps: number;
  /** Tokens per training sequence (≤ model.max_seq). */
  seq: number;
  /** Sequences per micro-batch. */
  micro_batch: number;
  /** Micro-batches accumulated per step: global batch = micro_batch × grad_accum × dp. */
  grad_accum: number;
  /** Peak learning rate. */
  lr: number;
  /** Final learning rate (Meditron: 10% of lr). */
  min_lr: number;
  /** Linear warmup steps from 0. */
  warmup_steps: number;
  /** Step where the cosine reaches min_lr; 0 means `steps`. */
  decay_steps: number;
  /** AdamW β1. */
  beta1: number;
  /** AdamW β2. */
  beta2: number;
  /** AdamW epsilon. */
  eps: number;
  /** Decoupled weight decay (not on 1-D tensors). */
  weight_decay: number;
  /** Global-norm clip; 0 disables. */
  grad_clip: number;
  /** Validation loss every N steps (0: never). */
  eval_every: number;
  /** Validation batches (of micro_batch sequences) per evaluation. */
  eval_batches: number;
  /** Checkpoint every N steps (0: only at the end). */
  save_every: number;
  /** Kernel/BLAS threads (0: all cores). */
  threads: number;
  /** Consecutive steps with a non-finite gradient norm (skipped, as Megatron does) before the run stops. */
  skip_limit: number;
  /** When a checkpoint cannot be written (disk full, read-only): "stop" the run or "continue" training. */
  on_save_error: string;
}

/** Training data (YAML section `data`). */
export interface DataConfig {
  /** `embedded` (the bundled demo corpus) or a JSONL file of `{"text": …}` documents. */
  source: string;
  /** Fraction of documents held out for validation. */
  valid_fraction: number;
  /**
   * Organ systems the embedded corpus is rendered for: `all` (default) or a comma-separated list such as
   * `cardiovascular,respiratory` (a focused corpus that a tiny model learns in minutes). Only with
   * `source: embedded`. Absent in checkpoints written before the key existed (read as `all`).
   */
  systems?: string;
}

/** Parallel layout (YAML section `parallel`): tp·pp·dp ranks. */
export interface ParallelConfig {
  /** Tensor-parallel size (divides n_heads, n_kv_heads and ffn_dim). */
  tp: number;
  /** Pipeline-parallel size (divides n_layers). */
  pp: number;
  /** Data-parallel size. */
  dp: number;
  /** ZeRO-1: shard the AdamW state over DP. */
  distributed_optimizer: boolean;
  /** Where the model runs: "cpu" (fp32) or "cuda" (bf16 + fp32 master weights; `deno task build --cuda`). */
  device?: Device;
  /** Activation recomputation: "none" or "selective" (attention, norms and SwiGLU recomputed in backward). */
  recompute?: Recompute;
}

/**
 * The native topology of a run's `parallel` section.
 *
 * @example
 * ```ts
 * import { presetConfig, topologyOf } from "./config.ts";
 * topologyOf(presetConfig("tiny").parallel); // { tp: 1, pp: 1, dp: 1, zero1: false, device: "cpu", … }
 * ```
 */
export function topologyOf(par: ParallelConfig): Topology {
  return {
    tp: par.tp,
    pp: par.pp,
    dp: par.dp,
    zero1: par.distributed_optimizer,
    device: par.device ?? "cpu",
    recompute: par.recompute ?? "none",
  };
}

/** A complete run configuration. */
export interface RunConfig {
  /** Run name: outputs go to `<out>/<name>/`. */
  name: string;
  /** Architecture. */
  model: ModelConfig;
  /** Optimisation. */
  train: TrainConfig;
  /** Data. */
  data: DataConfig;
  /** Parallel layout. */
  parallel: ParallelConfig;
}

const LLAMA2_COMMON = { vocab_size: 32000, norm_eps: 1e-5, rope_theta: 10000, init_std: 0.02 };
// Meditron (Chen et al. 2023): AdamW β = (0.9, 0.95), eps 1e-5, 2000 warmup steps, cosine to 10% of the peak,
// weight decay 0.1, clip 1.0; peak lr 3e-4 for 7B/13B and 1.5e-4 for 70B; context 2048 (7B) and 4096 (70B).
const MEDITRON_TRAIN = {
  warmup_steps: 2000,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-5,
  weight_decay: 0.1,
  grad_clip: 1.0,
};

/** Architectures of the presets (Llama-2 sizes from the Llama-2 release configs). */
export const MODEL_PRESETS: Readonly<Record<string, ModelConfig>> = {
  tiny: {
    dim: 128,
    n_layers: 4,
    n_heads: 4,
    n_kv_heads: 2,
    ffn_dim: 384,
    max_seq: 256,
    ...LLAMA2_COMMON,
  },
  "llama2-7b": {
    dim: 4096,
    n_layers: 32,
    n_heads: 32,
    n_kv_heads: 32,
    ffn_dim: 11008,
    max_seq: 4096,
    ...LLAMA2_COMMON,
  },
  "llama2-13b": {
    dim: 5120,
    n_layers: 40,
    n_heads: 40,
    n_kv_heads: 40,
    ffn_dim: 13824,
    max_seq: 4096,
    ...LLAMA2_COMMON,
  },
  "llama2-70b": {
    dim: 8192,
    n_layers: 80,
    n_heads: 64,
    n_kv_heads: 8,
    ffn_dim: 28672,
    max_seq: 4096,
    ...LLAMA2_COMMON,
  },
};

const DEFAULT_TRAIN: TrainConfig = {
  seed: 1234,
  steps: 200,
  seq: 128,
  micro_batch: 8,
  grad_accum: 1,
  lr: 3e-3,
  min_lr: 3e-4,
  warmup_steps: 20,
  decay_steps: 0,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-5,
  weight_decay: 0.1,
  grad_clip: 1.0,
  eval_every: 50,
  eval_batches: 4,
  save_every: 100,
  threads: 0,
  skip_limit: 10,
  on_save_error: "stop",
};

/** Training settings of the presets. */
export const TRAIN_PRESETS: Readonly<Record<string, Partial<TrainConfig>>> = {
  tiny: {},
  "llama2-7b": { ...MEDITRON_TRAIN, lr: 3e-4, min_lr: 3e-5, seq: 2048, steps: 20000, micro_batch: 1 },
  "llama2-13b": { ...MEDITRON_TRAIN, lr: 3e-4, min_lr: 3e-5, seq: 2048, steps: 20000, micro_batch: 1 },
  "llama2-70b": { ...MEDITRON_TRAIN, lr: 1.5e-4, min_lr: 1.5e-5, seq: 4096, steps: 20000, micro_batch: 1 },
};

/** The full default configuration of a preset. */
export function presetConfig(preset: string): RunConfig {
  const model = MODEL_PRESETS[preset];
  if (!model) {
    throw new ConfigError(`unknown preset '${preset}' (known: ${Object.keys(MODEL_PRESETS).join(", ")})`);
  }
  return {
    name: preset,
    model: { ...model },
    train: { ...DEFAULT_TRAIN, ...TRAIN_PRESETS[preset] },
    data: { source: "embedded", valid_fraction: 0.05, systems: "all" },
    parallel: { tp: 1, pp: 1, dp: 1, distributed_optimizer: false, device: "cpu", recompute: "none" },
  };
}

const ARCHITECTURE_KEYS = ["dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim"] as const;

/**
 * The configuration for continuing to pretrain a model of architecture `m` (an imported checkpoint): `m` with
 * the training settings of the preset of the same shape (width, depth, heads, FFN), else llama2-7b's
 * (Meditron's), `train.seq` capped at `m.max_seq`.
 *
 * @example
 * ```ts
 * import { continuedPretrainingConfig, MODEL_PRESETS } from "./config.ts";
 * const cfg = continuedPretrainingConfig({ ...MODEL_PRESETS["llama2-70b"], vocab_size: 32002 });
 * console.log(cfg.train.lr, cfg.train.seq); // 0.00015 4096
 * ```
 */
export function continuedPretrainingConfig(m: ModelConfig): RunConfig {
  const preset =
    Object.keys(MODEL_PRESETS).find((name) =>
      ARCHITECTURE_KEYS.every((k) => MODEL_PRESETS[name][k] === m[k])
    ) ?? "llama2-7b";
  const cfg = presetConfig(preset);
  cfg.model = { ...m };
  cfg.train.seq = Math.min(cfg.train.seq, m.max_seq);
  return cfg;
}

/**
 * Shortens `train.warmup_steps` when a run cut to `train.steps` (the cosine decaying over the steps,
 * `train.decay_steps` 0) no longer holds it: the warmup keeps its fraction of `stepsBefore`, the step count
 * before the cut. Returns a one-line notice, or undefined when the warmup fits.
 *
 * @example
 * ```ts
 * import { fitWarmupToSteps, presetConfig } from "./config.ts";
 * const cfg = presetConfig("tiny"); // 200 steps, warmup 20
 * cfg.train.steps = 5;
 * fitWarmupToSteps(cfg, 200); // "train.warmup_steps 20 > train.steps 5: warmup shortened to 0 steps …"
 * console.log(cfg.train.warmup_steps); // 0
 * ```
 */
export function fitWarmupToSteps(cfg: RunConfig, stepsBefore: number): string | undefined {
  const t = cfg.train;
  if (t.decay_steps !== 0 || t.warmup_steps <= t.steps || !isInt(t.steps, 1)) return undefined;
  const fraction = stepsBefore > 0 ? Math.min(1, t.warmup_steps / stepsBefore) : 1;
  const warmup = Math.floor(t.steps * fraction);
  const note =
    `train.warmup_steps ${t.warmup_steps} > train.steps ${t.steps}: warmup shortened to ${warmup} ` +
    `steps (${
      Math.round(fraction * 100)
    }% of the run as configured, rounded down; --set train.warmup_steps=N to choose)`;
  t.warmup_steps = warmup;
  return note;
}

/** A configuration problem, reported as one line naming the file and key. */
export class ConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A parsed YAML (or JSON) value. */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };
type Json = YamlValue;

// Recursively overlays `src` onto `dst`, checking keys and value types against `dst` (the defaults).
function overlay(dst: Record<string, unknown>, src: Json, where: string, path: string): void {
  if (src === null || typeof src !== "object" || Array.isArray(src)) {
    throw new ConfigError(`${where}: '${path || "<root>"}' must be a mapping`);
  }
  for (const [key, value] of Object.entries(src)) {
    const full = path ? `${path}.${key}` : key;
    if (!(key in dst)) {
      throw new ConfigError(`${where}: unknown key '${full}' (known: ${Object.keys(dst).join(", ")})`);
    }
    const current = dst[key];
    if (typeof current === "object" && current !== null) {
      overlay(current as Record<string, unknown>, value, where, full);
    } else if (typeof value !== typeof current) {
      throw new ConfigError(`${where}: '${full}' must be a ${typeof current}, got ${JSON.stringify(value)}`);
    } else {
      dst[key] = value;
    }
  }
}

/**
 * Parses a YAML configuration. A top-level `preset: NAME` picks the defaults (default `tiny`); every other
 * key overrides them.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const cfg = parseConfig("preset: tiny\ntrain:\n  steps: 10\n  warmup_steps: 2\n", "inline.yaml");
 * console.log(cfg.train.steps); // 10
 * ```
 */
export function parseConfig(text: string, where: string): RunConfig {
  const { preset, ...rest } = parseYamlMapping(text, where);
  if (preset !== undefined && typeof preset !== "string") {
    throw new ConfigError(`${where}: 'preset' must be a string`);
  }
  let cfg: RunConfig;
  try {
    cfg = presetConfig(preset ?? "tiny");
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  overlay(cfg as unknown as Record<string, unknown>, rest, where, "");
  validateConfig(cfg, where);
  return cfg;
}

/** Reads and parses a YAML file (see {@linkcode parseConfig}). */
export async function loadConfig(path: string): Promise<RunConfig> {
  return parseConfig(await readConfigText(path), path);
}

/**
 * The text of a configuration file; a {@linkcode ConfigError} naming the file when it cannot be read.
 *
 * @example
 * ```ts
 * import { readConfigText } from "./config.ts";
 * const text = await readConfigText("configs/tiny.yaml");
 * ```
 */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot read config (${(e as Error).message})`);
  }
}

/**
 * A YAML document whose top level is a mapping (an empty document is an empty mapping); a one-line
 * {@linkcode ConfigError} naming `where` otherwise.
 *
 * @example
 * ```ts
 * import { parseYamlMapping } from "./config.ts";
 * parseYamlMapping("train:\n  steps: 10\n", "inline.yaml"); // { train: { steps: 10 } }
 * ```
 */
export function parseYamlMapping(text: string, where: string): Record<string, YamlValue> {
  let doc: Json;
  try {
    doc = (parseYaml(text) ?? {}) as Json;
  } catch (e) {
    throw new ConfigError(`${where}: invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`${where}: the top level must be a mapping`);
  }
  return doc as Record<string, Json>;
}

/**
 * Sets `section.key` from a CLI string, parsed to the key's type. Call {@linkcode validateConfig} once all
 * overrides are applied (constraints span keys, e.g. steps and warmup).
 *
 * @example
 * ```ts
 * import { overrideConfig, presetConfig, validateConfig } from "./config.ts";
 * const cfg = presetConfig("tiny");
 * overrideConfig(cfg, "train.steps", "40");
 * validateConfig(cfg, "command line");
 * ```
 */
export function overrideConfig(cfg: RunConfig, dotted: string, value: string): void {
  const parts = dotted.split(".");
  let node = cfg as unknown as Record<string, unknown>;
  for (const p of parts.slice(0, -1)) {
    if (typeof node[p] !== "object" || node[p] === null) {
      throw new ConfigError(`--set: unknown key '${dotted}'`);
    }
    node = node[p] as Record<string, unknown>;
  }
  const key = parts[parts.length - 1];
  if (!(key in node) || typeof node[key] === "object") {
    throw new ConfigError(`--set: unknown key '${dotted}'`);
  }
  const kind = typeof node[key];
  if (kind === "number") {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) {
      throw new ConfigError(`--set: '${dotted}' must be a number, got '${value}'`);
    }
    node[key] = n;
  } else if (kind === "boolean") {
    if (value !== "true" && value !== "false") {
      throw new ConfigError(`--set: '${dotted}' must be true or false`);
    }
    node[key] = value === "true";
  } else {
    node[key] = value;
  }
}

function rule(ok: boolean, where: string, message: string): void {
  if (!ok) throw new ConfigError(`${where}: ${message}`);
}

function isInt(x: number, min: number): boolean {
  return Number.isInteger(x) && x >= min;
}

/** Checks every constraint; throws {@linkcode ConfigError} naming the key. */
export function validateConfig(cfg: RunConfig, where: string): void {
  const m = cfg.model, t = cfg.train;
  rule(
    /^[\w.-]+$/.test(cfg.name),
    where,
    `name '${cfg.name}' may only contain letters, digits, '_', '-', '.'`,
  );
  for (const k of ["dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "vocab_size", "max_seq"] as const) {
    rule(isInt(m[k], 1), where, `model.${k} must be a positive integer (got ${m[k]})`);
  }
  rule(m.dim % m.n_heads === 0, where, `model.n_heads (${m.n_heads}) must divide model.dim (${m.dim})`);
  rule(
    m.n_heads % m.n_kv_heads === 0,
    where,
    `model.n_kv_heads (${m.n_kv_heads}) must divide model.n_heads (${m.n_heads})`,
  );
  rule((m.dim / m.n_heads) % 2 === 0, where, `head dim (${m.dim / m.n_heads}) must be even for RoPE`);
  rule(m.norm_eps > 0, where, `model.norm_eps must be > 0 (got ${m.norm_eps})`);
  rule(m.rope_theta > 0, where, `model.rope_theta must be > 0 (got ${m.rope_theta})`);
  rule(m.init_std >= 0, where, `model.init_std must be >= 0 (got ${m.init_std})`);
  for (const k of ["steps", "seq", "micro_batch", "grad_accum"] as const) {
    rule(isInt(t[k], 1), where, `train.${k} must be a positive integer (got ${t[k]})`);
  }
  for (
    const k of ["warmup_steps", "decay_steps", "eval_every", "eval_batches", "save_every", "threads"] as const
  ) {
    rule(isInt(t[k], 0), where, `train.${k} must be an integer >= 0 (got ${t[k]})`);
  }
  rule(isInt(t.seed, 0), where, `train.seed must be an integer >= 0 (got ${t.seed})`);
  rule(t.seq <= m.max_seq, where, `train.seq (${t.seq}) exceeds model.max_seq (${m.max_seq})`);
  rule(t.lr >= 0, where, `train.lr must be >= 0 (got ${t.lr})`);
  rule(
    t.on_save_error === "stop" || t.on_save_error === "continue",
    where,
    `train.on_save_error must be "stop" or "continue" (got "${t.on_save_error}")`,
  );
  rule(t.min_lr >= 0 && t.min_lr <= t.lr, where, `train.min_lr must be in [0, train.lr] (got ${t.min_lr})`);
  rule(t.beta1 >= 0 && t.beta1 < 1, where, `train.beta1 must be in [0, 1) (got ${t.beta1})`);
  rule(t.beta2 >= 0 && t.beta2 < 1, where, `train.beta2 must be in [0, 1) (got ${t.beta2})`);
  rule(t.eps > 0, where, `train.eps must be > 0 (got ${t.eps})`);
  rule(t.weight_decay >= 0, where, `train.weight_decay must be >= 0 (got ${t.weight_decay})`);
  rule(t.grad_clip >= 0, where, `train.grad_clip must be >= 0 (got ${t.grad_clip})`);
  const decay = t.decay_steps || t.steps;
  rule(
    decay >= t.warmup_steps,
    where,
    `train.decay_steps (${decay}) must be >= train.warmup_steps (${t.warmup_steps})`,
  );
  const par = cfg.parallel;
  for (const k of ["tp", "pp", "dp"] as const) {
    rule(isInt(par[k], 1), where, `parallel.${k} must be a positive integer (got ${par[k]})`);
  }
  rule(
    m.n_heads % par.tp === 0,
    where,
    `model.n_heads (${m.n_heads}) is not divisible by parallel.tp (${par.tp})`,
  );
  rule(
    m.n_kv_heads % par.tp === 0,
    where,
    `model.n_kv_heads (${m.n_kv_heads}) is not divisible by parallel.tp (${par.tp}): each rank needs whole kv heads`,
  );
  rule(
    m.ffn_dim % par.tp === 0,
    where,
    `model.ffn_dim (${m.ffn_dim}) is not divisible by parallel.tp (${par.tp})`,
  );
  rule(
    par.device === undefined || par.device === "cpu" || par.device === "cuda",
    where,
    `parallel.device must be cpu or cuda (got ${par.device})`,
  );
  rule(
    par.recompute === undefined || par.recompute === "none" || par.recompute === "selective",
    where,
    `parallel.recompute must be none or selective (got ${par.recompute})`,
  );
  rule(
    m.n_layers % par.pp === 0,
    where,
    `model.n_layers (${m.n_layers}) is not divisible by parallel.pp (${par.pp})`,
  );
  rule(
    cfg.data.valid_fraction >= 0 && cfg.data.valid_fraction < 1,
    where,
    `data.valid_fraction must be in [0, 1) (got ${cfg.data.valid_fraction})`,
  );
  const systems = cfg.data.systems ?? "all";
  rule(
    systems === "all" || cfg.data.source === "embedded",
    where,
    `data.systems (${systems}) selects organ systems of the embedded corpus, but data.source is '${cfg.data.source}'`,
  );
  rule(
    systems === "all" || /^[a-z-]+(,[a-z-]+)*$/.test(systems),
    where,
    `data.systems must be 'all' or a comma-separated list of organ systems (got '${systems}')`,
  );
}

/** The runtime's view of the architecture. */
export function modelDims(m: ModelConfig): ModelDims {
  return {
    dim: m.dim,
    nLayers: m.n_layers,
    nHeads: m.n_heads,
    nKvHeads: m.n_kv_heads,
    ffnDim: m.ffn_dim,
    vocabSize: m.vocab_size,
    maxSeq: m.max_seq,
    normEps: m.norm_eps,
    ropeTheta: m.rope_theta,
  };
}

/** The runtime's view of the optimizer. */
export function optimSettings(t: TrainConfig): OptimSettings {
  return {
    lr: t.lr,
    minLr: t.min_lr,
    warmupSteps: t.warmup_steps,
    decaySteps: t.decay_steps || t.steps,
    beta1: t.beta1,
    beta2: t.beta2,
    eps: t.eps,
    weightDecay: t.weight_decay,
    gradClip: t.grad_clip,
  };
}
