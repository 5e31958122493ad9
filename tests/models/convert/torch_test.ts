// PyTorch files without Python: a hand-assembled zip + pickle (runs everywhere), refusals naming the opcode or
// global, and — when Debian's python3-torch is present — torch.save fixtures (bf16/fp16/fp32, a strided view, a
// Parameter), an HF `.bin` import, and a Meta-style model-parallel pair merged and Q/K-permuted to HF layout.
import assert from "node:assert/strict";
import { join } from "node:path";
import { hfToNative } from "../../../models/convert/hf.ts";
import { allParams } from "../../../models/convert/layout.ts";
import { MetaCheckpoint, permuteToHf, permuteToMeta, pthToHf } from "../../../models/convert/meta.ts";
import { NativeCheckpointReader } from "../../../models/convert/native.ts";
import { ShardedSafetensors } from "../../../models/convert/sharded.ts";
import { parseStateDict, TorchFile } from "../../../models/convert/torch.ts";
import { tempDir } from "../../helpers.ts";
import { handPickle, handZip } from "./fixtures.ts";

const haveTorch = await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" })
  .output().then((o) => o.success, () => false);

const enc = new TextEncoder();

Deno.test("a hand-assembled torch.save zip + pickle is read", async () => {
  using dir = tempDir();
  const path = join(dir.path, "hand.bin");
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  Deno.writeFileSync(path, handZip([["archive/data.pkl", handPickle()], ["archive/data/0", data]]));
  using f = await TorchFile.open(path);
  assert.deepEqual(f.list(), [{ name: "w", shape: [2, 2], dtype: "F32" }]);
  assert.deepEqual([...await f.read("w")], [1, 2, 3, 4]);
});

Deno.test("pickles outside the state-dict subset are refused naming the opcode or global", async () => {
  const hooks = (b: Uint8Array) => () => parseStateDict(b, "x.pkl");
  assert.throws(
    hooks(new Uint8Array([0x80, 2, 0x81, 0x2e])),
    /x.pkl: unsupported pickle opcode NEWOBJ \(0x81\)/,
  );
  assert.throws(hooks(new Uint8Array([0x80, 2, 0x8f, 0x2e])), /unsupported pickle opcode EMPTY_SET/);
  assert.throws(
    hooks(new Uint8Array([0x80, 2, 0x63, ...enc.encode("os\nsystem\n"), 0x2e])),
    /refusing global os.system/,
  );
  assert.throws(hooks(new Uint8Array([0x80, 2, 0x7d])), /truncated pickle/);
  assert.throws(hooks(new Uint8Array([0x80, 2, 0x4b, 1, 0x2e])), /not a state dict/);
  using dir = tempDir();
  const path = join(dir.path, "notzip.bin");
  Deno.writeFileSync(path, new Uint8Array([1, 2, 3]));
  await assert.rejects(() => TorchFile.open(path), /notzip.bin: not a zip archive/);
  Deno.writeFileSync(path, new Uint8Array([0x80, 2, 0x8a, 10]));
  await assert.rejects(() => TorchFile.open(path), /legacy \(pre-1.6\) torch.save format/);
  // A storage shorter than its tensor: the one-line error, not garbage.
  Deno.writeFileSync(
    path,
    handZip([["archive/data.pkl", handPickle()], ["archive/data/0", new Uint8Array(8)]]),
  );
  using f = await TorchFile.open(path);
  await assert.rejects(() => f.read("w"), /storage 0 has 8 bytes, expected 16/);
});

Deno.test("Q/K permutation: permuteToHf is HF's permute and permuteToMeta its inverse", () => {
  const heads = 2, hd = 4, cols = 3;
  const w = Float32Array.from({ length: heads * hd * cols }, (_, i) => i);
  const hf = permuteToHf(w, heads, cols);
  // Head 0 rows (0,1,2,3) → (0,2,1,3): row 1 of HF is Meta's row 2.
  assert.deepEqual([...hf.subarray(cols, 2 * cols)], [6, 7, 8]);
  assert.deepEqual(permuteToMeta(hf, heads, cols), w);
});

const TORCH_FIXTURES = `
import json, sys, torch, collections
out = sys.argv[1]
torch.manual_seed(0)
sd = collections.OrderedDict()
sd["f32"] = torch.randn(3, 4)
sd["bf16"] = torch.randn(5).to(torch.bfloat16)
sd["f16"] = torch.randn(2, 3).to(torch.float16)
sd["view"] = sd["f32"].t()
sd["param"] = torch.nn.Parameter(torch.randn(2))
torch.save(sd, out + "/sd.bin")
json.dump({k: v.detach().float().reshape(-1).tolist() for k, v in sd.items()}, open(out + "/sd.json", "w"))

# A tiny GQA Llama in HF layout, saved as HF .bin and as a Meta model-parallel pair.
dim, layers, heads, kv, ffn, vocab = 32, 2, 4, 2, 48, 64
hd = dim // heads
hf = collections.OrderedDict()
hf["model.embed_tokens.weight"] = torch.randn(vocab, dim)
for l in range(layers):
  p = f"model.layers.{l}."
  hf[p + "self_attn.q_proj.weight"] = torch.randn(heads * hd, dim)
  hf[p + "self_attn.k_proj.weight"] = torch.randn(kv * hd, dim)
  hf[p + "self_attn.v_proj.weight"] = torch.randn(kv * hd, dim)
  hf[p + "self_attn.o_proj.weight"] = torch.randn(dim, heads * hd)
  hf[p + "mlp.gate_proj.weight"] = torch.randn(ffn, dim)
  hf[p + "mlp.up_proj.weight"] = torch.randn(ffn, dim)
  hf[p + "mlp.down_proj.weight"] = torch.randn(dim, ffn)
  hf[p + "input_layernorm.weight"] = torch.randn(dim)
  hf[p + "post_attention_layernorm.weight"] = torch.randn(dim)
hf["model.norm.weight"] = torch.randn(dim)
hf["lm_head.weight"] = torch.randn(vocab, dim)
import os
os.makedirs(out + "/hfbin"); os.makedirs(out + "/meta")
torch.save(hf, out + "/hfbin/pytorch_model.bin")
json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": dim, "intermediate_size": ffn,
  "num_attention_heads": heads, "num_key_value_heads": kv, "num_hidden_layers": layers, "rms_norm_eps": 1e-5,
  "vocab_size": vocab, "max_position_embeddings": 128, "torch_dtype": "float32"}, open(out + "/hfbin/config.json", "w"))
to_meta = lambda w, h: w.view(h, 2, hd // 2, dim).transpose(1, 2).reshape(h * hd, dim)   # inverse of HF's permute
names = {"self_attn.q_proj": ("attention.wq", 0), "self_attn.k_proj": ("attention.wk", 0),
  "self_attn.v_proj": ("attention.wv", 0), "self_attn.o_proj": ("attention.wo", 1), "mlp.gate_proj": ("feed_forward.w1", 0),
  "mlp.down_proj": ("feed_forward.w2", 1), "mlp.up_proj": ("feed_forward.w3", 0), "input_layernorm": ("attention_norm", None),
  "post_attention_layernorm": ("ffn_norm", None)}
shards = [collections.OrderedDict(), collections.OrderedDict()]
def put(name, w, d):
  for i, s in enumerate(shards):
    s[name] = (w.clone() if d is None else w.chunk(2, dim=d)[i].clone()).to(torch.bfloat16)
put("tok_embeddings.weight", hf["model.embed_tokens.weight"], 1)
for l in range(layers):
  for k, (m, d) in names.items():
    w = hf[f"model.layers.{l}.{k}.weight"]
    if k == "self_attn.q_proj": w = to_meta(w, heads)
    if k == "self_attn.k_proj": w = to_meta(w, kv)
    put(f"layers.{l}.{m}.weight", w, d)
put("norm.weight", hf["model.norm.weight"], None)
put("output.weight", hf["lm_head.weight"], 0)
for s in shards: s["rope.freqs"] = torch.randn(hd // 2).to(torch.bfloat16)
for i, s in enumerate(shards): torch.save(s, out + f"/meta/consolidated.0{i}.pth")
json.dump({"dim": dim, "n_layers": layers, "n_heads": heads, "n_kv_heads": kv, "multiple_of": 16, "norm_eps": 1e-5,
  "vocab_size": -1}, open(out + "/meta/params.json", "w"))
`;

Deno.test({
  name: "torch.save fixtures (python3-torch): state dict, HF .bin import, Meta pair merged + un-permuted",
  ignore: !haveTorch,
  fn: async () => {
    using dir = tempDir();
    const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", TORCH_FIXTURES, dir.path] })
      .output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const want: Record<string, number[]> = JSON.parse(Deno.readTextFileSync(join(dir.path, "sd.json")));
    {
      using f = await TorchFile.open(join(dir.path, "sd.bin"));
      assert.deepEqual(f.list().map((t) => [t.name, t.dtype]), [
        ["f32", "F32"],
        ["bf16", "BF16"],
        ["f16", "F16"],
        ["view", "F32"],
        ["param", "F32"],
      ]);
      for (const [k, v] of Object.entries(want)) {
        assert.deepEqual([...await f.read(k)], v.map(Math.fround), k);
      }
    }
    // HF .bin → native: the tensors arrive unchanged.
    const ck = await hfToNative(join(dir.path, "hfbin"), join(dir.path, "run"), { tp: 2 });
    using hfbin = await TorchFile.open(join(dir.path, "hfbin", "pytorch_model.bin"));
    {
      using nat = await NativeCheckpointReader.open(ck);
      for (const name of allParams(nat.model)) {
        assert.deepEqual(await nat.param(name), await hfbin.read(name), name);
      }
    }
    // Meta pair (bf16, model parallel 2, interleaved Q/K) → HF: equal to the bf16-rounded HF tensors.
    using meta = await MetaCheckpoint.open(join(dir.path, "meta"), { maxSeq: 128 });
    assert.equal(meta.model.n_kv_heads, 2);
    assert.equal(meta.model.ffn_dim, 48);
    assert.equal(meta.model.vocab_size, 64);
    await pthToHf(join(dir.path, "meta"), join(dir.path, "fromMeta"), { dtype: "F32", maxSeq: 128 });
    using conv = await ShardedSafetensors.open(join(dir.path, "fromMeta"));
    const bf = (x: Float32Array) => {
      const u = new Uint32Array(Float32Array.from(x).buffer);
      for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) << 16;
      return new Float32Array(u.buffer);
    };
    for (const name of allParams(meta.model)) {
      assert.deepEqual(await conv.read(name), bf(await hfbin.read(name)), name);
    }
    const cfg = JSON.parse(Deno.readTextFileSync(join(dir.path, "fromMeta", "config.json")));
    assert.equal(cfg.num_key_value_heads, 2);
    assert.equal(cfg.max_position_embeddings, 128);
  },
});
