// Small Hugging Face Llama directories built in tests: config.json, weights (deterministic values exactly
// representable in bf16), a tiny tokenizer.json.
import { join } from "node:path";
import { writeShardedSafetensors } from "../../../models/convert/sharded.ts";
import type { ModelConfig } from "../../../models/config.ts";
import { allParams, fullShape } from "../../../models/convert/layout.ts";
import type { WriteDtype } from "../../../models/safetensors.ts";

/** A GQA architecture whose vocabulary needs padding for TP. */
export const GQA: ModelConfig = {
  dim: 32,
  n_layers: 2,
  n_heads: 4,
  n_kv_heads: 2,
  ffn_dim: 48,
  vocab_size: 300,
  max_seq: 64,
  norm_eps: 1e-5,
  rope_theta: 10000,
  init_std: 0.02,
};

/** Deterministic values of tensor `name`, rounded to bf16 so every dtype holds them exactly. */
export function values(name: string, n: number): Float32Array {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    h = Math.imul(h ^ i, 16777619) >>> 0;
    out[i] = ((h % 2001) - 1000) / 1000 * 0.05;
    u[i] &= 0xffff0000;
  }
  return out;
}

/** config.json of `m` as transformers writes it. */
export function configJson(m: ModelConfig, dtype: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: m.dim,
    intermediate_size: m.ffn_dim,
    num_attention_heads: m.n_heads,
    num_key_value_heads: m.n_kv_heads,
    num_hidden_layers: m.n_layers,
    rms_norm_eps: m.norm_eps,
    rope_theta: m.rope_theta,
    vocab_size: m.vocab_size,
    max_position_embeddings: m.max_seq,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: dtype,
    ...extra,
  });
}

/** A tokenizer.json with a 4-token base vocabulary and one added token (id 299). */
export const TOKENIZER_JSON = JSON.stringify({
  version: "1.0",
  added_tokens: [{ id: 0, content: "<unk>", special: true }, {
    id: 299,
    content: "<|im_end|>",
    special: true,
  }],
  model: { type: "BPE", vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, "a": 3 }, merges: [] },
});

/** Writes an HF directory for `m` in `dtype` (sharded when `maxShardBytes` is small). */
export async function writeHfDir(
  dir: string,
  m: ModelConfig,
  dtype: WriteDtype,
  maxShardBytes = 5e9,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const torch = { F32: "float32", BF16: "bfloat16", F16: "float16" }[dtype];
  await Deno.writeTextFile(join(dir, "config.json"), configJson(m, torch));
  await Deno.writeTextFile(join(dir, "tokenizer.json"), TOKENIZER_JSON);
  const names = allParams(m);
  await writeShardedSafetensors(
    dir,
    names.map((name) => ({ name, shape: fullShape(m, name), dtype })),
    (name) => Promise.resolve(values(name, fullShape(m, name).reduce((a, b) => a * b, 1))),
    { maxShardBytes },
  );
}

const enc = new TextEncoder();
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const sbu = (s: string) => [0x8c, s.length, ...enc.encode(s)]; // SHORT_BINUNICODE

/** Protocol-2 pickle of OrderedDict{"w": _rebuild_tensor_v2(storage("0", Float, 4), 0, (2, 2), (2, 1), False, OrderedDict())}. */
export function handPickle(): Uint8Array {
  const b: number[] = [0x80, 2];
  b.push(0x63, ...enc.encode("collections\nOrderedDict\n"), 0x29, 0x52); // OrderedDict()
  b.push(0x28, ...sbu("w")); // MARK "w"
  b.push(0x63, ...enc.encode("torch._utils\n_rebuild_tensor_v2\n"));
  b.push(0x28); // args
  b.push(
    0x28,
    ...sbu("storage"),
    0x63,
    ...enc.encode("torch\nFloatStorage\n"),
    ...sbu("0"),
    ...sbu("cpu"),
    0x4b,
    4,
    0x74,
  );
  b.push(0x51); // BINPERSID
  b.push(0x4b, 0, 0x4b, 2, 0x4b, 2, 0x86, 0x4b, 2, 0x4b, 1, 0x86, 0x89); // 0, (2,2), (2,1), False
  b.push(0x63, ...enc.encode("collections\nOrderedDict\n"), 0x29, 0x52); // backward hooks
  b.push(0x74, 0x52); // TUPLE, REDUCE
  b.push(0x75, 0x2e); // SETITEMS, STOP
  return new Uint8Array(b);
}

/** A stored (uncompressed) zip of `files` (CRCs are not checked by readers of torch files; left 0). */
export function handZip(files: [string, Uint8Array][]): Uint8Array {
  const out: number[] = [], central: number[] = [];
  for (const [name, data] of files) {
    const n = enc.encode(name), off = out.length;
    out.push(
      ...u32(0x04034b50),
      20,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...u32(0),
      ...u32(data.length),
      ...u32(data.length),
    );
    out.push(n.length, 0, 0, 0, ...n, ...data);
    central.push(...u32(0x02014b50), 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32(0), ...u32(data.length));
    central.push(...u32(data.length), n.length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32(off), ...n);
  }
  const cdOff = out.length;
  out.push(...central, ...u32(0x06054b50), 0, 0, 0, 0, files.length, 0, files.length, 0);
  out.push(...u32(central.length), ...u32(cdOff), 0, 0);
  return new Uint8Array(out);
}
