/**
 * Hugging Face `LlamaForCausalLM` directories ↔ native checkpoints.
 *
 * Import reads `config.json`, maps and checks every tensor (bf16/fp16 widened exactly to fp32; a tied
 * `lm_head` is copied from the embedding since the native model is untied), cuts the (tp, pp) shards and writes
 * iteration 0 with zero AdamW moments and step 0, so `pretrain --resume` / `finetune --init` start from it.
 * The original `config.json`, `generation_config.json` and tokenizer files are kept in `RUN/hf/`.
 * Export reassembles full tensors, writes them in the requested dtype (round-to-nearest-even) as a sharded
 * set with its index, a `config.json` transformers loads, `generation_config.json` and the tokenizer files.
 * Both build the output in a temp directory next to it and rename it into place: a failure leaves nothing.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { continuedPretrainingConfig, type ModelConfig, type RunConfig, validateConfig } from "../config.ts";
import { type LoadOptions, type OpenedModel, openModel, resolveCheckpoint } from "../checkpoint.ts";
import type { WriteDtype } from "../safetensors.ts";
import { allParams, fullShape } from "./layout.ts";
import { NativeCheckpointReader, type Progress, writeNativeCheckpoint } from "./native.ts";
import { parseSize, ShardedSafetensors, writeShardedSafetensors } from "./sharded.ts";
import type { TensorSource } from "./source.ts";
import { growVocab } from "./resize.ts";
import { openHfBin } from "./torch.ts";

/** Tokenizer and generation files carried along with the weights. */
export const TOKENIZER_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
];

/** What `config.json` says, in native terms. */
export interface HfConfig {
  /** Architecture. */
  model: ModelConfig;
  /** `tie_word_embeddings`. */
  tied: boolean;
  /** Begin-of-sequence id. */
  bosTokenId: number;
  /** End-of-sequence id. */
  eosTokenId: number;
  /** `torch_dtype` of the file, when given. */
  torchDtype?: string;
  /** The parsed JSON. */
  raw: Record<string, unknown>;
}

/**
 * Parses a Llama `config.json` (text) into the native architecture; `where` names the file in errors.
 *
 * @example
 * ```ts
 * import { parseHfConfig } from "./hf.ts";
 * const c = parseHfConfig(JSON.stringify({
 *   hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2,
 *   rms_norm_eps: 1e-5, vocab_size: 300, max_position_embeddings: 64,
 * }), "config.json");
 * console.log(c.model.n_kv_heads); // 2
 * ```
 */
export function parseHfConfig(text: string, where: string): HfConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: not a JSON object`);
  }
  const arch = raw.architectures;
  if (Array.isArray(arch) && !arch.includes("LlamaForCausalLM")) {
    throw new Error(`${where}: architectures ${JSON.stringify(arch)} is not LlamaForCausalLM`);
  }
  const int = (k: string, dflt?: number): number => {
    const v = raw[k] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new Error(`${where}: '${k}' must be a positive integer`);
    }
    return v as number;
  };
  const num = (k: string, dflt: number): number => {
    const v = raw[k] ?? dflt;
    if (typeof v !== "number" || !(v > 0)) throw new Error(`${where}: '${k}' must be a positive number`);
    return v;
  };
  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null) {
    throw new Error(`${where}: rope_scaling is not supported`);
  }
  const heads = int("num_attention_heads");
  const model: ModelConfig = {
    dim: int("hidden_size"),
    n_layers: int("num_hidden_layers"),
    n_heads: heads,
    n_kv_heads: int("num_key_value_heads", heads),
    ffn_dim: int("intermediate_size"),
    vocab_size: int("vocab_size"),
    max_seq: int("max_position_embeddings"),
    norm_eps: num("rms_norm_eps", 1e-6),
    rope_theta: num("rope_theta", 10000),
    init_std: typeof raw.initializer_range === "number" ? raw.initializer_range : 0.02,
  };
  const id = (k: string, d: number) => (Number.isInteger(raw[k]) ? raw[k] as number : d);
  return {
    model,
    tied: raw.tie_word_embeddings === true,
    bosTokenId: id("bos_token_id", 1),
    eosTokenId: id("eos_token_id", 2),
    torchDtype: typeof raw.torch_dtype === "string" ? raw.torch_dtype : undefined,
    raw,
  };
}

/**
 * The `config.json` of an exported model.
 *
 * @example
 * ```ts
 * import { hfConfigJson } from "./hf.ts";
 * import { presetConfig } from "../config.ts";
 * const c = hfConfigJson(presetConfig("tiny").model, { dtype: "BF16", bosTokenId: 1, eosTokenId: 2 });
 * console.log(c.torch_dtype); // bfloat16
 * ```
 */
export function hfConfigJson(
  m: ModelConfig,
  opts: { dtype: WriteDtype; bosTokenId: number; eosTokenId: number; padTokenId?: number },
): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    hidden_size: m.dim,
    intermediate_size: m.ffn_dim,
    num_attention_heads: m.n_heads,
    num_key_value_heads: m.n_kv_heads,
    num_hidden_layers: m.n_layers,
    head_dim: m.dim / m.n_heads,
    rms_norm_eps: m.norm_eps,
    rope_theta: m.rope_theta,
    rope_scaling: null,
    vocab_size: m.vocab_size,
    max_position_embeddings: m.max_seq,
    initializer_range: m.init_std,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: false,
    use_cache: true,
    bos_token_id: opts.bosTokenId,
    eos_token_id: opts.eosTokenId,
    ...(opts.padTokenId !== undefined ? { pad_token_id: opts.padTokenId } : {}),
    torch_dtype: { F32: "float32", BF16: "bfloat16", F16: "float16" }[opts.dtype],
  };
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/**
 * Builds `final` through a temp sibling directory renamed into place; removes the temp dir on failure.
 *
 * @example
 * ```ts ignore
 * import { buildAtomically } from "./hf.ts";
 * await buildAtomically("/tmp/out-dir", async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/x.txt`, "complete");
 * });
 * ```
 */
export async function buildAtomically<T>(final: string, build: (tmp: string) => Promise<T>): Promise<T> {
  if (await exists(final)) {
    const empty = (await Array.fromAsync(Deno.readDir(final))).length === 0;
    if (!empty) throw new Error(`${final}: already exists (choose a new output path)`);
    await Deno.remove(final);
  }
  const tmp = join(dirname(resolve(final)), `.${basename(final)}.tmp-${Deno.pid}`);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const out = await build(tmp);
    await Deno.rename(tmp, final);
    return out;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Options of {@linkcode hfToNative}. */
export interface HfToNativeOptions {
  /** Tensor-parallel size of the written checkpoint. */
  tp?: number;
  /** Pipeline-parallel size. */
  pp?: number;
  /** Data-parallel size (matters only with ZeRO-1). */
  dp?: number;
  /** Write ZeRO-1 optimizer chunks. */
  zero1?: boolean;
  /** Opens the weights when the directory has no safetensors (default: PyTorch `.bin` files). */
  openOther?: (dir: string) => Promise<TensorSource | undefined>;
  /** Grow the vocabulary by this many tokens (new rows: mean of the existing rows; see resize.ts). */
  addTokens?: number;
  /** Progress lines. */
  progress?: Progress;
}

const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/**
 * Checks a source holds exactly a Llama model of `m` (by name and shape); returns whether lm_head is absent.
 *
 * @example
 * ```ts ignore
 * import { checkLlamaTensors } from "./hf.ts";
 * import { ShardedSafetensors } from "./sharded.ts";
 * import { presetConfig } from "../config.ts";
 * using src = await ShardedSafetensors.open("Llama-2-7b-hf");
 * checkLlamaTensors(src, presetConfig("llama2-7b").model, "Llama-2-7b-hf");
 * ```
 */
export function checkLlamaTensors(
  src: TensorSource,
  m: ModelConfig,
  where: string,
): { lmHeadMissing: boolean } {
  const have = new Map(src.list().filter((t) => !IGNORED.test(t.name)).map((t) => [t.name, t]));
  const want = allParams(m);
  let lmHeadMissing = false;
  for (const name of want) {
    const t = have.get(name);
    if (!t) {
      if (name === "lm_head.weight") {
        lmHeadMissing = true;
        continue;
      }
      throw new Error(`${where}: missing tensor '${name}'`);
    }
    const shape = fullShape(m, name);
    if (t.shape.join("x") !== shape.join("x")) {
      throw new Error(`${where}: tensor '${name}' has shape [${t.shape}], config.json implies [${shape}]`);
    }
    if (!["F32", "BF16", "F16"].includes(t.dtype)) {
      throw new Error(`${where}: tensor '${name}' is ${t.dtype}`);
    }
    have.delete(name);
  }
  if (have.size) throw new Error(`${where}: unexpected tensor '${[...have.keys()][0]}' for LlamaForCausalLM`);
  return { lmHeadMissing };
}

/**
 * Converts the Hugging Face directory `inDir` into a native run directory `outRun` (must not exist or be
 * empty); returns the checkpoint directory.
 *
 * @example
 * ```ts ignore
 * await hfToNative("Llama-2-7b-hf", "runs/llama2-7b", { tp: 2 });
 * ```
 */
export async function hfToNative(
  inDir: string,
  outRun: string,
  opts: HfToNativeOptions = {},
): Promise<string> {
  const cfgPath = join(inDir, "config.json");
  const text = await Deno.readTextFile(cfgPath).catch(() => {
    throw new Error(`${cfgPath}: cannot read (is ${inDir} a Hugging Face model directory?)`);
  });
  const hf = parseHfConfig(text, cfgPath);
  const tp = opts.tp ?? 1, pp = opts.pp ?? 1, dp = opts.dp ?? 1, zero1 = opts.zero1 ?? false;
  // Meditron's continued-pretraining settings for the model's size, not the tiny demo's.
  const config: RunConfig = {
    ...continuedPretrainingConfig({ ...hf.model, vocab_size: hf.model.vocab_size + (opts.addTokens ?? 0) }),
    name: basename(resolve(outRun)).replace(/[^\w.-]/g, "_"),
  };
  validateConfig(config, cfgPath);
  // The layout is the caller's choice (--tp/--pp/--dp), not config.json's: errors name it.
  config.parallel = { tp, pp, dp, distributed_optimizer: zero1 };
  validateConfig(config, `the requested layout --tp ${tp} --pp ${pp} --dp ${dp}`);
  const hasSafetensors = (await exists(join(inDir, "model.safetensors"))) ||
    (await exists(join(inDir, "model.safetensors.index.json")));
  const src = hasSafetensors
    ? await ShardedSafetensors.open(inDir)
    : await (opts.openOther ?? openHfBin)(inDir);
  if (!src) {
    throw new Error(`${inDir}: no model.safetensors, model.safetensors.index.json or PyTorch weights`);
  }
  using _src = src;
  const { lmHeadMissing } = checkLlamaTensors(src, hf.model, inDir);
  if (lmHeadMissing && !hf.tied) throw new Error(`${inDir}: missing tensor 'lm_head.weight'`);
  let cache: { name: string; data: Float32Array } | undefined;
  const read = async (name: string): Promise<Float32Array> => {
    const real = name === "lm_head.weight" && lmHeadMissing ? "model.embed_tokens.weight" : name;
    if (cache?.name !== real) {
      cache = undefined; // drop the previous tensor before reading the next one
      cache = { name: real, data: await src.read(real) };
    }
    return cache.data;
  };
  return await buildAtomically(outRun, async (tmp) => {
    const hfDir = join(tmp, "hf");
    await Deno.mkdir(hfDir);
    for (const f of ["config.json", "generation_config.json", ...TOKENIZER_FILES]) {
      if (await exists(join(inDir, f))) await Deno.copyFile(join(inDir, f), join(hfDir, f));
    }
    const ck = await writeNativeCheckpoint(
      tmp,
      {
        config,
        topology: { tp, pp, dp, zero1 },
        iteration: 0,
        consumedSamples: 0,
        data: {},
        step: 0,
      },
      growVocab(hf.model, opts.addTokens ?? 0, { param: read }),
      opts.progress,
    );
    return join(outRun, "checkpoints", basename(ck));
  });
}

/** Options of {@linkcode nativeToHf}. */
export interface NativeToHfOptions {
  /** Largest shard (default 5 GB, decimal). */
  shardSize?: number | string;
  /** Stored dtype (default: the imported model's, else BF16). */
  dtype?: WriteDtype;
  /**
   * Tokenizer files to write when the run has none of its own (name → contents), or a function of the
   * model's vocabulary size giving them, called only when the run has no `tokenizer.json` of its own.
   */
  tokenizerFiles?: Record<string, string> | ((vocabSize: number) => Record<string, string> | undefined);
  /** Write the index even for a single shard. */
  alwaysIndex?: boolean;
  /** Progress lines. */
  progress?: Progress;
  /** Verify the sha256 of every source shard (default true). */
  verify?: boolean;
}

/**
 * Token ids of `tokenizer.json`'s added tokens that are not in its base vocabulary (name → id).
 *
 * @example
 * ```ts
 * import { addedTokens } from "./hf.ts";
 * const json = JSON.stringify({ added_tokens: [{ id: 5, content: "<x>" }], model: { vocab: { a: 0 } } });
 * console.log(addedTokens(json)); // { "<x>": 5 }
 * ```
 */
export function addedTokens(tokenizerJson: string): Record<string, number> {
  const tok = JSON.parse(tokenizerJson) as {
    added_tokens?: { id: number; content: string }[];
    model?: { vocab?: Record<string, number> };
  };
  const base = new Set(Object.values(tok.model?.vocab ?? {}));
  const out: Record<string, number> = {};
  for (const t of tok.added_tokens ?? []) if (!base.has(t.id)) out[t.content] = t.id;
  return out;
}

const DTYPE_NAMES: Record<string, WriteDtype> = { float32: "F32", bfloat16: "BF16", float16: "F16" };

/**
 * Exports a native run (run dir, checkpoints dir or iter dir) as a Hugging Face directory `outDir`.
 *
 * @example
 * ```ts ignore
 * await nativeToHf("runs/meditron-7b", "export/meditron-7b", { dtype: "BF16", shardSize: "5GB" });
 * ```
 */
export async function nativeToHf(
  inRun: string,
  outDir: string,
  opts: NativeToHfOptions = {},
): Promise<string[]> {
  const ckDir = await resolveCheckpoint(inRun);
  using ck = await NativeCheckpointReader.open(ckDir, { reuseBuffers: true, verify: opts.verify });
  const m = ck.model;
  // The run's own HF files (kept at import) sit in RUN/hf/; ckDir is RUN/checkpoints/iter_*.
  const hfDir = join(ckDir, "..", "..", "hf");
  const readOpt = (f: string) => Deno.readTextFile(join(hfDir, f)).catch(() => undefined);
  const origText = await readOpt("config.json");
  const orig = origText ? parseHfConfig(origText, join(hfDir, "config.json")) : undefined;
  const dtype = opts.dtype ?? DTYPE_NAMES[orig?.torchDtype ?? ""] ?? "BF16";
  const maxShardBytes = typeof opts.shardSize === "string"
    ? parseSize(opts.shardSize)
    : opts.shardSize ?? 5e9;
  const progress = opts.progress ?? (() => {});
  const bos = orig?.bosTokenId ?? 1, eos = orig?.eosTokenId ?? 2;
  const pad = Number.isInteger(orig?.raw.pad_token_id) ? orig!.raw.pad_token_id as number : undefined;
  const fallback = typeof opts.tokenizerFiles !== "function"
    ? opts.tokenizerFiles
    : await exists(join(hfDir, "tokenizer.json"))
    ? undefined
    : opts.tokenizerFiles(m.vocab_size);
  return await buildAtomically(outDir, async (tmp) => {
    const names = allParams(m);
    const files = await writeShardedSafetensors(
      tmp,
      names.map((name) => ({ name, shape: fullShape(m, name), dtype })),
      async (name) => {
        const data = await ck.param(name);
        progress(name);
        return data;
      },
      { maxShardBytes, alwaysIndex: opts.alwaysIndex },
    );
    const config = hfConfigJson(m, { dtype, bosTokenId: bos, eosTokenId: eos, padTokenId: pad });
    await Deno.writeTextFile(join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n");
    const gen = await readOpt("generation_config.json") ??
      JSON.stringify({ _from_model_config: true, bos_token_id: bos, eos_token_id: eos }, null, 2) + "\n";
    await Deno.writeTextFile(join(tmp, "generation_config.json"), gen);
    files.push("config.json", "generation_config.json");
    const tokenizer: Record<string, string> = {};
    for (const f of TOKENIZER_FILES) {
      if (await exists(join(hfDir, f))) await Deno.copyFile(join(hfDir, f), join(tmp, f));
      else if (fallback?.[f] !== undefined) {
        await Deno.writeTextFile(join(tmp, f), fallback[f]);
      } else continue;
      files.push(f);
      if (f === "tokenizer.json") tokenizer[f] = await Deno.readTextFile(join(tmp, f));
    }
    if (tokenizer["tokenizer.json"] && !files.includes("added_tokens.json")) {
      const added = addedTokens(tokenizer["tokenizer.json"]);
      for (const [t, id] of Object.entries(added)) {
        if (id >= m.vocab_size) {
          throw new Error(`added token '${t}' has id ${id} ≥ vocab_size ${m.vocab_size}`);
        }
      }
      if (Object.keys(added).length) {
        await Deno.writeTextFile(join(tmp, "added_tokens.json"), JSON.stringify(added, null, 2) + "\n");
        files.push("added_tokens.json");
      }
    }
    return files;
  });
}

/**
 * Opens a native run (dir, checkpoints/ or iter_*) or an HF directory, which is first converted to a temporary
 * native checkpoint (removed once loaded; `dir` then names the HF directory).
 *
 * @example
 * ```ts ignore
 * const { model, meta } = await openAnyModel("Llama-2-7b-hf", { device: "cpu" });
 * ```
 */
export async function openAnyModel(path: string, opts: LoadOptions = {}): Promise<OpenedModel> {
  if (!(await Deno.stat(join(path, "config.json")).then((s) => s.isFile, () => false))) {
    return await openModel(await resolveCheckpoint(path), opts);
  }
  const tmp = await Deno.makeTempDir({ prefix: "meditron-hf-" });
  try {
    const opened = await openModel(await hfToNative(path, join(tmp, "run"), {}), opts);
    return { ...opened, dir: path };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
