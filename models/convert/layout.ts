/**
 * Where every parameter of a (tp, pp) layout lives (DESIGN.md §6 and the runtime's sharding): which stage holds
 * it, the rows or columns each TP rank stores, and the flat-buffer order and sizes ZeRO-1 chunks refer to.
 * Pure arithmetic on the architecture; used to cut full tensors into shards and to reassemble them.
 *
 * @module
 */
import type { ModelConfig } from "../config.ts";

/** One rank's piece of one parameter. */
export interface ShardSpec {
  /** Hugging Face name. */
  name: string;
  /** Shape of the full tensor. */
  fullShape: number[];
  /** Dimension split over TP (−1: replicated). */
  splitDim: number;
  /** First index along `splitDim` stored by the rank. */
  start: number;
  /** Indices along `splitDim` stored (the visible part: vocab padding rows are never stored). */
  count: number;
  /** Shape of the stored shard. */
  shape: number[];
  /** Floats the tensor occupies in the rank's flat ZeRO-1 buffer (padded vocab rows included). */
  flatSize: number;
}

/**
 * Vocabulary padded to a multiple of 128·tp (the padding rows exist only inside the runtime).
 *
 * @example
 * ```ts
 * import { paddedVocab } from "./layout.ts";
 * console.log(paddedVocab(32000, 2)); // 32000
 * console.log(paddedVocab(32002, 1)); // 32128
 * ```
 */
export function paddedVocab(vocab: number, tp: number): number {
  const m = 128 * tp;
  return Math.ceil(vocab / m) * m;
}

const LAYER_PARTS = [
  "self_attn.q_proj",
  "self_attn.k_proj",
  "self_attn.v_proj",
  "self_attn.o_proj",
  "mlp.gate_proj",
  "mlp.up_proj",
  "mlp.down_proj",
  "input_layernorm",
  "post_attention_layernorm",
] as const;

/**
 * Parameter names of pipeline stage `pp` of `ppSize`, in the runtime's (flat buffer) order.
 *
 * @example
 * ```ts
 * import { stageParams } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * console.log(stageParams(presetConfig("tiny").model, 0, 1)[0]); // model.embed_tokens.weight
 * ```
 */
export function stageParams(m: ModelConfig, pp: number, ppSize: number): string[] {
  const per = m.n_layers / ppSize;
  const out: string[] = [];
  if (pp === 0) out.push("model.embed_tokens.weight");
  for (let l = pp * per; l < (pp + 1) * per; l++) {
    for (const part of LAYER_PARTS) out.push(`model.layers.${l}.${part}.weight`);
  }
  if (pp === ppSize - 1) out.push("model.norm.weight", "lm_head.weight");
  return out;
}

/**
 * Every parameter name of the model in Hugging Face order.
 *
 * @example
 * ```ts
 * import { allParams } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * console.log(allParams(presetConfig("tiny").model).length); // 39
 * ```
 */
export function allParams(m: ModelConfig): string[] {
  return stageParams(m, 0, 1);
}

/**
 * The stage holding parameter `name` in a `ppSize`-stage layout.
 *
 * @example
 * ```ts
 * import { stageOf } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * console.log(stageOf(presetConfig("tiny").model, "model.layers.3.mlp.up_proj.weight", 2)); // 1
 * ```
 */
export function stageOf(m: ModelConfig, name: string, ppSize: number): number {
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (layer) return Math.floor(Number(layer[1]) / (m.n_layers / ppSize));
  return name === "model.embed_tokens.weight" ? 0 : ppSize - 1;
}

/**
 * Full shape of parameter `name`.
 *
 * @example
 * ```ts
 * import { fullShape } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * console.log(fullShape(presetConfig("tiny").model, "model.layers.0.self_attn.k_proj.weight")); // [64, 128]
 * ```
 */
export function fullShape(m: ModelConfig, name: string): number[] {
  const hd = m.dim / m.n_heads;
  const part = name.replace(/^model\.layers\.\d+\./, "").replace(/\.weight$/, "");
  switch (part) {
    case "model.embed_tokens":
    case "lm_head":
      return [m.vocab_size, m.dim];
    case "model.norm":
    case "input_layernorm":
    case "post_attention_layernorm":
      return [m.dim];
    case "self_attn.q_proj":
      return [m.n_heads * hd, m.dim];
    case "self_attn.k_proj":
    case "self_attn.v_proj":
      return [m.n_kv_heads * hd, m.dim];
    case "self_attn.o_proj":
      return [m.dim, m.n_heads * hd];
    case "mlp.gate_proj":
    case "mlp.up_proj":
      return [m.ffn_dim, m.dim];
    case "mlp.down_proj":
      return [m.dim, m.ffn_dim];
  }
  throw new Error(`unknown parameter '${name}'`);
}

/**
 * TP rank `t` of `tpSize`'s piece of parameter `name`.
 *
 * @example
 * ```ts
 * import { shardSpec } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * const s = shardSpec(presetConfig("tiny").model, "model.layers.0.self_attn.o_proj.weight", 1, 2);
 * console.log(s.splitDim, s.start, s.shape); // 1 64 [ 128, 64 ]
 * ```
 */
export function shardSpec(m: ModelConfig, name: string, t: number, tpSize: number): ShardSpec {
  const full = fullShape(m, name);
  let splitDim: number, start: number, count: number, flatSize: number;
  if (full.length === 1) {
    splitDim = -1;
    start = 0;
    count = full[0];
  } else if (name === "model.embed_tokens.weight" || name === "lm_head.weight") {
    const rows = paddedVocab(m.vocab_size, tpSize) / tpSize;
    splitDim = 0;
    start = Math.min(t * rows, m.vocab_size);
    count = Math.max(0, Math.min(m.vocab_size, (t + 1) * rows) - start);
    flatSize = rows * m.dim;
  } else {
    splitDim = /(o_proj|down_proj)\.weight$/.test(name) ? 1 : 0;
    count = full[splitDim] / tpSize;
    start = t * count;
  }
  const shape = [...full];
  if (splitDim >= 0) shape[splitDim] = count;
  flatSize ??= shape.reduce((a, b) => a * b, 1);
  return { name, fullShape: full, splitDim, start, count, shape, flatSize };
}

/**
 * Flat-buffer offset of each parameter of stage `pp` on TP rank `t`, and the buffer's size.
 *
 * @example
 * ```ts
 * import { flatLayout } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * const { specs, size } = flatLayout(presetConfig("tiny").model, 0, 1, 0, 1);
 * console.log(specs[1].offset, size);
 * ```
 */
export function flatLayout(
  m: ModelConfig,
  t: number,
  tpSize: number,
  pp: number,
  ppSize: number,
): { specs: (ShardSpec & { offset: number })[]; size: number } {
  let offset = 0;
  const specs = stageParams(m, pp, ppSize).map((name) => {
    const s = shardSpec(m, name, t, tpSize);
    const out = { ...s, offset };
    offset += s.flatSize;
    return out;
  });
  return { specs, size: offset };
}

/**
 * The shard `spec` of the full tensor (a view when its rows are contiguous, else a copy).
 *
 * @example
 * ```ts
 * import { shardSpec, sliceShard } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * const m = presetConfig("tiny").model;
 * const spec = shardSpec(m, "model.layers.0.mlp.down_proj.weight", 1, 2);
 * const piece = sliceShard(new Float32Array(128 * 384), spec);
 * console.log(piece.length); // 24576
 * ```
 */
export function sliceShard(full: Float32Array, spec: ShardSpec): Float32Array {
  if (spec.splitDim === -1) return full;
  const [, cols] = spec.fullShape;
  if (spec.splitDim === 0) return full.subarray(spec.start * cols, (spec.start + spec.count) * cols);
  const rows = spec.fullShape[0], out = new Float32Array(rows * spec.count);
  for (let r = 0; r < rows; r++) {
    out.set(full.subarray(r * cols + spec.start, r * cols + spec.start + spec.count), r * spec.count);
  }
  return out;
}

/**
 * Writes the shard `data` into its place in the full tensor.
 *
 * @example
 * ```ts
 * import { placeShard, shardSpec } from "./layout.ts";
 * import { presetConfig } from "../config.ts";
 * const m = presetConfig("tiny").model;
 * const spec = shardSpec(m, "model.layers.0.mlp.up_proj.weight", 1, 2);
 * const full = new Float32Array(384 * 128);
 * placeShard(full, spec, new Float32Array(192 * 128).fill(1));
 * console.log(full[192 * 128]); // 1
 * ```
 */
export function placeShard(full: Float32Array, spec: ShardSpec, data: Float32Array): void {
  if (spec.splitDim === -1) {
    full.set(data);
    return;
  }
  const [, cols] = spec.fullShape;
  if (spec.splitDim === 0) {
    full.set(data, spec.start * cols);
    return;
  }
  for (let r = 0; r < spec.fullShape[0]; r++) {
    full.set(data.subarray(r * spec.count, (r + 1) * spec.count), r * cols + spec.start);
  }
}
