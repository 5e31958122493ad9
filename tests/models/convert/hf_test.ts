// Hugging Face ↔ native: HF → native (sharded over TP and PP) → HF is bit-exact for fp32 and bf16, GQA and a
// sharded index; the native checkpoint loads into a model exactly; config/tokenizer files are complete.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint, readCheckpointMeta } from "../../../models/checkpoint.ts";
import { modelDims, optimSettings, presetConfig } from "../../../models/config.ts";
import { hfToNative, nativeToHf, parseHfConfig } from "../../../models/convert/hf.ts";
import { allParams, flatLayout } from "../../../models/convert/layout.ts";
import { NativeCheckpointReader } from "../../../models/convert/native.ts";
import { INDEX_FILE, ShardedSafetensors } from "../../../models/convert/sharded.ts";
import { SafetensorsReader } from "../../../models/safetensors.ts";
import { NativeModel } from "../../../runtime/model.ts";
import { tempDir } from "../../helpers.ts";
import { GQA, values, writeHfDir } from "./fixtures.ts";

async function tensorBytes(
  dir: string,
): Promise<Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>> {
  const out = new Map();
  using src = await ShardedSafetensors.open(dir);
  for (const t of src.list()) out.set(t.name, { dtype: t.dtype, shape: t.shape });
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".safetensors"));
  for (const f of files) {
    using r = await SafetensorsReader.open(join(dir, f.name));
    for (const name of r.header.tensors.keys()) out.get(name).bytes = await r.readBytes(name);
  }
  return out;
}

for (const dtype of ["F32", "BF16"] as const) {
  Deno.test(`HF → native (tp 2, pp 2) → HF is bit-exact for ${dtype} (GQA, sharded index)`, async () => {
    using dir = tempDir();
    const src = join(dir.path, "hf"), run = join(dir.path, "run"), back = join(dir.path, "back");
    await writeHfDir(src, GQA, dtype, 20_000);
    const ck = await hfToNative(src, run, { tp: 2, pp: 2 });
    const meta = await readCheckpointMeta(ck);
    assert.deepEqual(meta.topology, { tp: 2, pp: 2, dp: 1, zero1: false });
    assert.equal(meta.iteration, 0);
    assert.deepEqual(meta.config.model, GQA);
    assert.deepEqual(meta.config.parallel, {
      tp: 2,
      pp: 2,
      dp: 1,
      distributed_optimizer: false,
      device: "cpu", // not written by the converter: read as the default
      recompute: "none",
    });
    // Vocabulary 300 padded to 512 for tp 2: rank 0 rows [0, 256), rank 1 rows [256, 300).
    {
      using r0 = await SafetensorsReader.open(join(ck, "model-tp00-pp00.safetensors"));
      using r1 = await SafetensorsReader.open(join(ck, "model-tp01-pp00.safetensors"));
      assert.deepEqual(r0.header.tensors.get("model.embed_tokens.weight")!.shape, [256, 32]);
      assert.deepEqual(r1.header.tensors.get("model.embed_tokens.weight")!.shape, [44, 32]);
      assert.deepEqual(r1.header.tensors.get("model.layers.0.self_attn.k_proj.weight")!.shape, [8, 32]);
      assert.deepEqual(r1.header.tensors.get("model.layers.0.self_attn.o_proj.weight")!.shape, [32, 16]);
      assert.ok(!r0.header.tensors.has("model.layers.1.mlp.up_proj.weight")); // layer 1 is on stage 1
      const full = values("model.layers.0.self_attn.o_proj.weight", 32 * 32);
      const got = await r1.readF32("model.layers.0.self_attn.o_proj.weight");
      assert.equal(got[0], full[16]); // row 0, column 16
      assert.equal(got[16], full[32 + 16]);
    }
    {
      using o = await SafetensorsReader.open(join(ck, "optim-tp00-pp01-dp00.safetensors"));
      assert.equal(o.header.metadata.step, "0");
      assert.ok((await o.readF32("lm_head.weight.exp_avg")).every((x) => x === 0));
    }
    const files = await nativeToHf(run, back, { dtype, shardSize: 20_000 });
    assert.ok(
      files.includes(INDEX_FILE) && files.includes("tokenizer.json") && files.includes("added_tokens.json"),
    );
    const a = await tensorBytes(src), b = await tensorBytes(back);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, t] of a) {
      assert.equal(b.get(name)!.dtype, t.dtype, name);
      assert.deepEqual(b.get(name)!.shape, t.shape, name);
      assert.deepEqual(b.get(name)!.bytes, t.bytes, `${name} differs`);
    }
    const cfgA = JSON.parse(Deno.readTextFileSync(join(src, "config.json")));
    const cfgB = JSON.parse(Deno.readTextFileSync(join(back, "config.json")));
    for (const [k, v] of Object.entries(cfgA)) assert.deepEqual(cfgB[k], v, `config.json '${k}'`);
    const index = JSON.parse(Deno.readTextFileSync(join(back, INDEX_FILE)));
    assert.deepEqual(Object.keys(index.weight_map).sort(), allParams(GQA).sort());
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(back, "added_tokens.json"))), {
      "<|im_end|>": 299,
    });
    const gen = JSON.parse(Deno.readTextFileSync(join(back, "generation_config.json")));
    assert.equal(gen.bos_token_id, 1);
    assert.equal(gen.eos_token_id, 2);
  });
}

Deno.test("an imported checkpoint loads into a native model with the HF values", async () => {
  using dir = tempDir();
  const src = join(dir.path, "hf"), run = join(dir.path, "run");
  await writeHfDir(src, GQA, "BF16");
  const ck = await hfToNative(src, run);
  const meta = await readCheckpointMeta(ck);
  using model = await NativeModel.create(modelDims(meta.config.model), optimSettings(meta.config.train), {
    seed: 1,
    initStd: 0.02,
  });
  await loadCheckpoint(ck, model);
  for (const p of model.params()) {
    assert.deepEqual(p.shape, p.fullShape);
    assert.deepEqual(model.read(p.name), values(p.name, p.size), p.name);
  }
  assert.deepEqual(model.params().map((p) => p.name), allParams(GQA));
  assert.equal(model.step, 0);
});

Deno.test("an imported Llama-2-shaped checkpoint carries Meditron's pretraining settings, not the tiny demo's", async () => {
  using dir = tempDir();
  const src = join(dir.path, "hf"), run = join(dir.path, "run");
  await writeHfDir(src, { ...GQA, max_seq: 4096 }, "BF16");
  const meta = await readCheckpointMeta(await hfToNative(src, run));
  const t = meta.config.train, tiny = presetConfig("tiny").train, b7 = presetConfig("llama2-7b").train;
  assert.notEqual(t.lr, tiny.lr);
  assert.notEqual(t.seq, tiny.seq);
  assert.deepEqual(t, b7); // lr 3e-4 -> 3e-5, warmup 2000, seq 2048 (= min(4096, 2048))
  await writeHfDir(join(dir.path, "short"), GQA, "BF16"); // max_position_embeddings 64
  const short = await readCheckpointMeta(await hfToNative(join(dir.path, "short"), join(dir.path, "run2")));
  assert.deepEqual([short.config.train.lr, short.config.train.seq], [b7.lr, 64]);
});

Deno.test("config.json problems and missing tensors are one-line errors; no output is left", async () => {
  using dir = tempDir();
  const src = join(dir.path, "hf"), run = join(dir.path, "run");
  assert.throws(() => parseHfConfig("{", "c.json"), /c.json: invalid JSON/);
  assert.throws(
    () => parseHfConfig('{"architectures":["GPT2LMHeadModel"]}', "c.json"),
    /is not LlamaForCausalLM/,
  );
  assert.throws(
    () => parseHfConfig('{"hidden_size": 0}', "c.json"),
    /'num_attention_heads' must be a positive integer/,
  );
  await writeHfDir(src, GQA, "F32");
  const cfg = JSON.parse(Deno.readTextFileSync(join(src, "config.json")));
  Deno.writeTextFileSync(join(src, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 50 }));
  await assert.rejects(
    () => hfToNative(src, run),
    /mlp.gate_proj.weight' has shape \[48,32\], config.json implies \[50,32\]/,
  );
  Deno.writeTextFileSync(join(src, "config.json"), JSON.stringify(cfg));
  // The layout is the --tp flag's doing, not config.json's: the error names the flag.
  await assert.rejects(() => hfToNative(src, run, { tp: 3 }), (e: Error) => {
    assert.match(
      e.message,
      /^the requested layout --tp 3 --pp 1 --dp 1: .*not divisible by parallel.tp \(3\)/,
    );
    assert.ok(!e.message.includes("config.json"), e.message);
    return true;
  });
  // A truncated weights file: refused, nothing left next to the output.
  const f = join(src, "model.safetensors");
  Deno.truncateSync(f, Deno.statSync(f).size - 10);
  await assert.rejects(
    () => hfToNative(src, run),
    /model.safetensors: tensor 'lm_head.weight' offsets .* are outside the data/,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["hf"]);
});

Deno.test("import with ZeRO-1 (dp 3): zero chunks sized ceil(flat / dp) with offsets, step 0", async () => {
  using dir = tempDir();
  const src = join(dir.path, "hf"), run = join(dir.path, "run");
  await writeHfDir(src, GQA, "BF16");
  const ck = await hfToNative(src, run, { tp: 2, dp: 3, zero1: true });
  const flat = flatLayout(GQA, 1, 2, 0, 1);
  const chunk = Math.ceil(flat.size / 3);
  for (let d = 0; d < 3; d++) {
    using r = await SafetensorsReader.open(join(ck, `optim-tp01-pp00-dp0${d}.safetensors`));
    assert.deepEqual(r.header.metadata, {
      step: "0",
      zero1: "1",
      offset: String(d * chunk),
      flat_size: String(flat.size),
    });
    assert.deepEqual(r.header.tensors.get("exp_avg")!.shape, [chunk]);
    assert.ok((await r.readF32("exp_avg_sq")).every((x) => x === 0));
  }
  using nat = await NativeCheckpointReader.open(ck);
  assert.deepEqual(await nat.param("lm_head.weight"), values("lm_head.weight", 300 * 32));
  assert.ok((await nat.moment("lm_head.weight", "exp_avg")).every((x) => x === 0));
});
