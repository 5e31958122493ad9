// `deno task convert` as a user runs it: help with examples on every command, HF → native → `pretrain
// --resume` → HF → inspect, and corrupt or truncated inputs of each kind giving one line and no output.
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../../helpers.ts";
import { GQA, handPickle, handZip, writeHfDir } from "./fixtures.ts";

const CONVERT = new URL("../../../cli/convert.ts", import.meta.url).pathname;
const PRETRAIN = new URL("../../../cli/pretrain.ts", import.meta.url).pathname;

async function run(cli: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("convert --help and every command's --help show examples", async () => {
  const top = await run(CONVERT, ["--help"]);
  assert.equal(top.code, 0);
  for (const cmd of ["hf-to-native", "native-to-hf", "reshard", "pth-to-hf", "inspect"]) {
    assert.match(top.stdout, new RegExp(cmd));
    const r = await run(CONVERT, [cmd, "--help"]);
    assert.equal(r.code, 0, cmd);
    assert.match(r.stdout, /Examples:\n {2}deno task convert/, cmd);
  }
  const bad = await run(CONVERT, ["frobnicate"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: unknown command 'frobnicate'/);
});

Deno.test("HF → native → pretrain --resume → HF → inspect from the command line", async () => {
  using dir = tempDir();
  const d = dir.path;
  const model = { ...GQA, vocab_size: 32000 };
  await writeHfDir(join(d, "hf"), model, "BF16");
  const imp = await run(CONVERT, ["hf-to-native", "--in", join(d, "hf"), "--out", join(d, "run")]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /wrote .*iter_0000000/);
  const corpus = join(d, "c.jsonl");
  Deno.writeTextFileSync(
    corpus,
    Array.from(
      { length: 40 },
      (_, i) => JSON.stringify({ text: `Note ${i}: aspirin after myocardial infarction.` }),
    )
      .join("\n") + "\n",
  );
  const train = await run(PRETRAIN, [
    "--resume",
    join(d, "run"),
    "--out",
    d,
    "--name",
    "run",
    "--data",
    corpus,
    "--steps",
    "1",
    "--set",
    "train.warmup_steps=0",
    "--seq",
    "16",
    "--micro-batch",
    "2",
    "--eval-every",
    "0",
  ]);
  assert.equal(train.code, 0, train.stderr + train.stdout);
  assert.match(train.stderr + train.stdout, /resumed from .*iter_0000000/);
  const exp = await run(CONVERT, [
    "native-to-hf",
    "--in",
    join(d, "run"),
    "--out",
    join(d, "back"),
    "--dtype",
    "fp32",
  ]);
  assert.equal(exp.code, 0, exp.stderr);
  const cfg = JSON.parse(Deno.readTextFileSync(join(d, "back", "config.json")));
  assert.equal(cfg.torch_dtype, "float32");
  assert.deepEqual(cfg.architectures, ["LlamaForCausalLM"]);
  assert.ok(Deno.statSync(join(d, "back", "tokenizer.json")).isFile);
  const ins = await run(CONVERT, ["inspect", join(d, "back")]);
  assert.equal(ins.code, 0, ins.stderr);
  assert.match(ins.stdout, /model\.layers\.1\.self_attn\.k_proj\.weight\s+F32\s+\[16, 32\]/);
  const params = 2 * 32000 * 32 + 2 * (32 * 32 * 2 + 16 * 32 * 2 + 3 * 48 * 32 + 2 * 32) + 32;
  assert.match(ins.stdout, new RegExp(`21 tensors, ${params.toLocaleString("en-US")} parameters`));
  const native = await run(CONVERT, ["inspect", join(d, "run")]);
  assert.match(native.stdout, /native checkpoint \(tp 1, pp 1, dp 1\)[\s\S]*iteration 1/);
});

Deno.test("corrupt or truncated inputs of each kind: one-line error, exit 1, no output left", async () => {
  using dir = tempDir();
  const d = dir.path;
  const cases: [string, string[], RegExp][] = [];
  // HF safetensors set with a broken index.
  await writeHfDir(join(d, "hfidx"), GQA, "F32", 20_000);
  Deno.writeTextFileSync(join(d, "hfidx", "model.safetensors.index.json"), "{ not json");
  cases.push([
    "index",
    ["hf-to-native", "--in", join(d, "hfidx"), "--out", join(d, "o1")],
    /index.json: invalid JSON/,
  ]);
  // HF safetensors file truncated mid-data.
  await writeHfDir(join(d, "hftrunc"), GQA, "BF16");
  const st = join(d, "hftrunc", "model.safetensors");
  Deno.truncateSync(st, Deno.statSync(st).size - 100);
  cases.push([
    "safetensors",
    ["hf-to-native", "--in", join(d, "hftrunc"), "--out", join(d, "o2")],
    /model.safetensors: .*outside the data/,
  ]);
  cases.push(["inspect", ["inspect", st], /model.safetensors: .*outside the data/]);
  // HF .bin truncated (the zip directory is lost).
  Deno.mkdirSync(join(d, "hfbin"));
  Deno.copyFileSync(join(d, "hftrunc", "config.json"), join(d, "hfbin", "config.json"));
  const zip = handZip([["archive/data.pkl", handPickle()], ["archive/data/0", new Uint8Array(16)]]);
  Deno.writeFileSync(join(d, "hfbin", "pytorch_model.bin"), zip.subarray(0, zip.length - 30));
  cases.push([
    "bin",
    ["hf-to-native", "--in", join(d, "hfbin"), "--out", join(d, "o3")],
    /pytorch_model.bin: not a zip archive/,
  ]);
  // Meta directory with a truncated shard.
  Deno.mkdirSync(join(d, "meta"));
  Deno.writeTextFileSync(
    join(d, "meta", "params.json"),
    JSON.stringify({ dim: 32, n_layers: 2, n_heads: 4 }),
  );
  Deno.writeFileSync(join(d, "meta", "consolidated.00.pth"), zip.subarray(0, 40));
  cases.push([
    "pth",
    ["pth-to-hf", "--in", join(d, "meta"), "--out", join(d, "o4")],
    /consolidated.00.pth: not a zip archive/,
  ]);
  // Native checkpoint with broken meta.json, and with a flipped byte in a shard.
  await writeHfDir(join(d, "hfok"), GQA, "F32");
  assert.equal(
    (await run(CONVERT, ["hf-to-native", "--in", join(d, "hfok"), "--out", join(d, "nat")])).code,
    0,
  );
  const ck = join(d, "nat", "checkpoints", "iter_0000000");
  const shard = join(ck, "model-tp00-pp00.safetensors");
  const bytes = Deno.readFileSync(shard);
  bytes[bytes.length - 5] ^= 0x40;
  Deno.writeFileSync(shard, bytes);
  cases.push([
    "shard",
    ["native-to-hf", "--in", join(d, "nat"), "--out", join(d, "o5")],
    /model-tp00-pp00.safetensors: sha256 mismatch/,
  ]);
  cases.push([
    "reshard",
    ["reshard", "--in", join(d, "nat"), "--out", join(d, "o6"), "--tp", "2"],
    /sha256 mismatch/,
  ]);
  assert.equal(
    (await run(CONVERT, ["hf-to-native", "--in", join(d, "hfok"), "--out", join(d, "nat2")])).code,
    0,
  );
  Deno.writeTextFileSync(join(d, "nat2", "checkpoints", "iter_0000000", "meta.json"), "{");
  cases.push([
    "meta.json",
    ["native-to-hf", "--in", join(d, "nat2"), "--out", join(d, "o7")],
    /meta.json: unreadable checkpoint metadata/,
  ]);
  for (const [what, args, re] of cases) {
    const r = await run(CONVERT, args);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n").filter((l) =>
      !/^(hf-to-native|native-to-hf|reshard|pth-to-hf)/.test(l)
    );
    assert.equal(lines.length, 1, `${what}: one line, got ${JSON.stringify(r.stderr)}`);
    assert.match(lines[0], /^error: /, what);
    assert.match(lines[0], re, `${what}: ${lines[0]}`);
  }
  const left = [...Deno.readDirSync(d)].map((e) => e.name).filter((n) => /^\.?o\d/.test(n));
  assert.deepEqual(left, [], "no partial output directories");
  // The error's advice works: --no-verify exports the damaged run.
  const r = await run(CONVERT, [
    "native-to-hf",
    "--in",
    join(d, "nat"),
    "--out",
    join(d, "kept"),
    "--no-verify",
  ]);
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("native-to-hf without --tokenizer writes the tokenizer of the model's vocabulary size", async () => {
  using dir = tempDir();
  const d = dir.path;
  const importWithoutTokenizer = async (name: string, vocab: number) => {
    await writeHfDir(join(d, `hf-${name}`), { ...GQA, vocab_size: vocab }, "BF16");
    const imp = await run(CONVERT, ["hf-to-native", "--in", join(d, `hf-${name}`), "--out", join(d, name)]);
    assert.equal(imp.code, 0, imp.stderr);
    Deno.removeSync(join(d, name, "hf", "tokenizer.json")); // a run with no tokenizer of its own
    return imp.stdout;
  };
  const hint = await importWithoutTokenizer("chat", 32002);
  // The hint says what resuming does: Meditron's settings for the size, with the data to pass.
  assert.match(hint, /continue pretraining: deno task pretrain --resume \S*chat --out \S+ --data YOUR_DATA/);
  assert.match(hint, /lr 0\.0003 -> 0\.00003, warmup 2000, 20000 steps, seq 64/);
  const exp = await run(CONVERT, ["native-to-hf", "--in", join(d, "chat"), "--out", join(d, "chat-hf")]);
  assert.equal(exp.code, 0, exp.stderr);
  const tok = JSON.parse(Deno.readTextFileSync(join(d, "chat-hf", "tokenizer.json")));
  assert.deepEqual(
    tok.added_tokens.filter((t: { id: number }) => t.id >= 32000).map((t: { content: string }) => t.content),
    ["<|im_start|>", "<|im_end|>"],
  );
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(d, "chat-hf", "added_tokens.json"))), {
    "<|im_start|>": 32000,
    "<|im_end|>": 32001,
  });
  // A vocabulary no Llama-2 tokenizer has: asks for --tokenizer, writes nothing.
  await importWithoutTokenizer("odd", 300);
  const odd = await run(CONVERT, ["native-to-hf", "--in", join(d, "odd"), "--out", join(d, "odd-hf")]);
  assert.equal(odd.code, 1);
  assert.match(odd.stderr, /^error: the model's vocabulary has 300 tokens.*pass --tokenizer/);
  assert.ok(![...Deno.readDirSync(d)].some((e) => e.name.includes("odd-hf")), "no output left");
});
