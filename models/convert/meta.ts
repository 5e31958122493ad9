/**
 * Meta's original Llama-2 release (`params.json` + `consolidated.NN.pth`, one file per model-parallel rank)
 * read as one Hugging Face-named model: shards merged along Meta's split dimensions (embedding by columns,
 * q/k/v/w1/w3/output by rows, o/w2 by columns, norms replicated) and Q/K rows permuted from Meta's interleaved
 * RoPE pairs to HF's rotate-half halves — exactly transformers' `permute(w) = w.view(h, hd/2, 2, d)
 * .transpose(1, 2)`, whose inverse is `w.view(h, 2, hd/2, d).transpose(1, 2)`; K uses the KV head count.
 *
 * @module
 */
import { join } from "node:path";
import type { ModelConfig } from "../config.ts";
import type { WriteDtype } from "../safetensors.ts";
import { buildAtomically, hfConfigJson } from "./hf.ts";
import { allParams, fullShape } from "./layout.ts";
import type { Progress } from "./native.ts";
import { parseSize, writeShardedSafetensors } from "./sharded.ts";
import type { TensorInfo, TensorSource } from "./source.ts";
import { TorchFile } from "./torch.ts";

/**
 * Meta's interleaved Q/K rows → HF rotate-half rows, per head: out[h, j·hd/2 + i] = in[h, 2i + j].
 *
 * @example
 * ```ts
 * import { permuteToHf } from "./meta.ts";
 * // one head of dim 4, one column: rows (x0, y0, x1, y1) become (x0, x1, y0, y1)
 * console.log([...permuteToHf(new Float32Array([0, 1, 2, 3]), 1, 1)]); // [0, 2, 1, 3]
 * ```
 */
export function permuteToHf(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols, hd = rows / heads, half = hd / 2;
  if (!Number.isInteger(hd) || hd % 2) throw new Error(`cannot permute ${rows} rows into ${heads} heads`);
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + 2 * i + j) * cols, dst = (h * hd + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/**
 * The inverse of {@linkcode permuteToHf} (HF rotate-half → Meta interleaved).
 *
 * @example
 * ```ts
 * import { permuteToHf, permuteToMeta } from "./meta.ts";
 * const w = new Float32Array([0, 1, 2, 3]);
 * console.log([...permuteToMeta(permuteToHf(w, 1, 1), 1, 1)]); // [0, 1, 2, 3]
 * ```
 */
export function permuteToMeta(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols, hd = rows / heads, half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const dst = (h * hd + 2 * i + j) * cols, src = (h * hd + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

// HF name → [Meta name, concat dim over model-parallel shards (−1: replicated)].
function metaName(hf: string): [string, number] {
  const l = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  if (l) {
    const [, i, part] = l;
    const map: Record<string, [string, number]> = {
      "self_attn.q_proj": ["attention.wq", 0],
      "self_attn.k_proj": ["attention.wk", 0],
      "self_attn.v_proj": ["attention.wv", 0],
      "self_attn.o_proj": ["attention.wo", 1],
      "mlp.gate_proj": ["feed_forward.w1", 0],
      "mlp.down_proj": ["feed_forward.w2", 1],
      "mlp.up_proj": ["feed_forward.w3", 0],
      "input_layernorm": ["attention_norm", -1],
      "post_attention_layernorm": ["ffn_norm", -1],
    };
    const [m, d] = map[part];
    return [`layers.${i}.${m}.weight`, d];
  }
  if (hf === "model.embed_tokens.weight") return ["tok_embeddings.weight", 1];
  if (hf === "model.norm.weight") return ["norm.weight", -1];
  return ["output.weight", 0];
}

/** Concatenates 2-D blocks along `dim`. */
function concat(blocks: { data: Float32Array; shape: number[] }[], dim: number): Float32Array {
  if (blocks.length === 1) return blocks[0].data;
  const rows = dim === 0 ? blocks.reduce((a, b) => a + b.shape[0], 0) : blocks[0].shape[0];
  const cols = dim === 1 ? blocks.reduce((a, b) => a + b.shape[1], 0) : blocks[0].shape[1];
  const out = new Float32Array(rows * cols);
  let at = 0;
  for (const b of blocks) {
    if (dim === 0) out.set(b.data, at * cols);
    else {for (let r = 0; r < rows; r++) {
        out.set(b.data.subarray(r * b.shape[1], (r + 1) * b.shape[1]), r * cols + at);
      }}
    at += b.shape[dim];
  }
  return out;
}

/**
 * A Meta checkpoint directory read as an HF-named model.
 *
 * @example
 * ```ts ignore
 * using src = await MetaCheckpoint.open("llama-2-7b", { maxSeq: 4096 });
 * console.log(src.model.n_heads, src.list().length);
 * ```
 */
export class MetaCheckpoint implements TensorSource {
  /** Architecture from params.json and the tensor shapes. */
  readonly model: ModelConfig;
  /** Stored dtype of the shards. */
  readonly dtype: string;
  readonly #shards: TorchFile[];
  readonly #shapes: Map<string, number[]>[];

  private constructor(shards: TorchFile[], model: ModelConfig, dtype: string) {
    this.#shards = shards;
    this.#shapes = shards.map((s) => new Map(s.list().map((t) => [t.name, t.shape])));
    this.model = model;
    this.dtype = dtype;
  }

  /** Opens `dir` (params.json + consolidated.00.pth …). */
  static async open(dir: string, opts: { maxSeq?: number } = {}): Promise<MetaCheckpoint> {
    const pPath = join(dir, "params.json");
    let params: Record<string, number>;
    try {
      params = JSON.parse(await Deno.readTextFile(pPath));
    } catch (e) {
      throw new Error(`${pPath}: cannot read Meta params (${(e as Error).message})`);
    }
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      /^consolidated\.\d+\.pth$/.test(n)
    )
      .sort();
    if (!files.length) throw new Error(`${dir}: no consolidated.NN.pth files`);
    const shards: TorchFile[] = [];
    try {
      for (const f of files) shards.push(await TorchFile.open(join(dir, f)));
      const first = new Map(shards[0].list().map((t) => [t.name, t]));
      const emb = first.get("tok_embeddings.weight"), w1 = first.get("layers.0.feed_forward.w1.weight");
      if (!emb || !w1) {
        throw new Error(`${dir}/${files[0]}: not a Meta Llama checkpoint (no tok_embeddings/w1)`);
      }
      const heads = params.n_heads;
      const model: ModelConfig = {
        dim: params.dim,
        n_layers: params.n_layers,
        n_heads: heads,
        n_kv_heads: params.n_kv_heads ?? heads,
        ffn_dim: w1.shape[0] * shards.length,
        vocab_size: params.vocab_size > 0 ? params.vocab_size : emb.shape[0],
        max_seq: opts.maxSeq ?? 4096,
        norm_eps: params.norm_eps ?? 1e-5,
        rope_theta: params.rope_theta ?? 10000,
        init_std: 0.02,
      };
      for (const k of ["dim", "n_layers", "n_heads"] as const) {
        if (!Number.isInteger(model[k]) || model[k] < 1) {
          throw new Error(`${pPath}: '${k}' is missing or invalid`);
        }
      }
      return new MetaCheckpoint(shards, model, emb.dtype);
    } catch (e) {
      for (const s of shards) s[Symbol.dispose]();
      throw e;
    }
  }

  /** HF names and full shapes. */
  list(): TensorInfo[] {
    return allParams(this.model).map((name) => ({
      name,
      shape: fullShape(this.model, name),
      dtype: this.dtype,
    }));
  }

  /** A full HF tensor: merged over the shards, Q/K permuted to rotate-half. */
  async read(name: string): Promise<Float32Array<ArrayBuffer>> {
    const [meta, dim] = metaName(name);
    const want = fullShape(this.model, name);
    const blocks: { data: Float32Array; shape: number[] }[] = [];
    for (let s = 0; s < (dim === -1 ? 1 : this.#shards.length); s++) {
      const shape = this.#shapes[s].get(meta);
      if (!shape) throw new Error(`consolidated.${String(s).padStart(2, "0")}.pth: missing '${meta}'`);
      blocks.push({ data: await this.#shards[s].read(meta), shape });
    }
    const merged = concat(blocks, dim);
    if (merged.length !== want.reduce((a, b) => a * b, 1)) {
      throw new Error(`'${meta}' merges to ${merged.length} values, params.json implies [${want}]`);
    }
    const m = this.model;
    if (name.endsWith("q_proj.weight")) {
      return permuteToHf(merged, m.n_heads, m.dim) as Float32Array<ArrayBuffer>;
    }
    if (name.endsWith("k_proj.weight")) {
      return permuteToHf(merged, m.n_kv_heads, m.dim) as Float32Array<ArrayBuffer>;
    }
    return merged as Float32Array<ArrayBuffer>;
  }

  /** Closes every shard. */
  [Symbol.dispose](): void {
    for (const s of this.#shards) s[Symbol.dispose]();
  }
}

/**
 * Converts a Meta checkpoint directory into a Hugging Face directory (`tokenizer.model` copied along).
 *
 * @example
 * ```ts ignore
 * await pthToHf("llama-2-7b", "Llama-2-7b-hf", { dtype: "BF16" });
 * ```
 */
export async function pthToHf(
  inDir: string,
  outDir: string,
  opts: { dtype?: WriteDtype; shardSize?: string | number; maxSeq?: number; progress?: Progress } = {},
): Promise<string[]> {
  using src = await MetaCheckpoint.open(inDir, { maxSeq: opts.maxSeq });
  const dtype = opts.dtype ?? (["F32", "BF16", "F16"].includes(src.dtype) ? src.dtype as WriteDtype : "BF16");
  const maxShardBytes = typeof opts.shardSize === "string"
    ? parseSize(opts.shardSize)
    : opts.shardSize ?? 5e9;
  return await buildAtomically(outDir, async (tmp) => {
    const files = await writeShardedSafetensors(
      tmp,
      src.list().map((t) => ({ name: t.name, shape: t.shape, dtype })),
      async (name) => {
        const data = await src.read(name);
        opts.progress?.(name);
        return data;
      },
      { maxShardBytes },
    );
    const config = hfConfigJson(src.model, { dtype, bosTokenId: 1, eosTokenId: 2 });
    await Deno.writeTextFile(join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n");
    await Deno.writeTextFile(
      join(tmp, "generation_config.json"),
      JSON.stringify({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2 }, null, 2) + "\n",
    );
    files.push("config.json", "generation_config.json");
    if (await Deno.stat(join(inDir, "tokenizer.model")).then(() => true, () => false)) {
      await Deno.copyFile(join(inDir, "tokenizer.model"), join(tmp, "tokenizer.model"));
      files.push("tokenizer.model");
    }
    return files;
  });
}
