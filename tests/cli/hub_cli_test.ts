// The CLIs with hub repository ids instead of paths, against the test hub (HF_ENDPOINT) and a temp HF_HOME:
// convert hf-to-native of a hub model (then again offline from the cache), eval of a hub-served benchmark
// (--data org/name, and a benchmark's default repo without --data), eval/chat --model and finetune --init of a
// hub model, data clean --input of a hub file, a gated repository's message, and offline mode without a cache.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers.ts";
import { filesOfDir, TestHub } from "../data/hub_server.ts";
import { GQA, writeHfDir } from "../models/convert/fixtures.ts";
import { lukaemonMmluParquet, medmcqaParquet, pubmedqaParquet } from "../eval/hub_fixtures.ts";
import { HUB_BENCHMARK_REPOS } from "../../eval/mod.ts";

const CLI = (name: string) => fileURLToPath(new URL(`../../cli/${name}.ts`, import.meta.url));

async function run(cli: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI(cli), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("CLIs take hub repo ids: convert, eval --data/--model, default benchmark repo, gated, offline", async () => {
  await using hub = new TestHub();
  using d = tempDir();
  const env = { HF_ENDPOINT: hub.url, HF_HOME: join(d.path, "hf"), HF_TOKEN: "", NO_COLOR: "1" };

  // A tiny Llama with the real vocabulary size (the eval tokenizer is Llama-2's), served as org/tiny.
  const hf = join(d.path, "hf-src");
  await writeHfDir(
    hf,
    { ...GQA, vocab_size: 32000, dim: 16, n_heads: 2, n_kv_heads: 1, ffn_dim: 32 },
    "BF16",
  );
  const files = { ...await filesOfDir(hf), "README.md": "card", "pytorch_model.bin": "never fetched" };
  const sha = hub.add({ type: "model", id: "org/tiny", files });

  const conv = await run("convert", ["hf-to-native", "--in", "org/tiny", "--out", join(d.path, "run")], env);
  assert.equal(conv.code, 0, conv.stderr);
  assert.match(conv.stderr, /hub: org\/tiny \(commit [0-9a-f]{12}\): \d+ files, \d+ to download/);
  assert.match(conv.stderr, /hub: [\d.]+\/[\d.]+ MB, (\d+)\/\1 files, [\d.]+ MB\/s, ETA \d+s/); // plain line, not a TTY
  const snap = join(d.path, "hf", "hub", "models--org--tiny", "snapshots", sha);
  assert.ok(Deno.lstatSync(join(snap, "config.json")).isSymlink);
  assert.ok(!hub.requests.some((r) => /README|pytorch_model/.test(r.path)));

  // Offline: the cache alone, no request at all.
  hub.requests.length = 0;
  const off = await run("convert", ["hf-to-native", "--in", "org/tiny", "--out", join(d.path, "run2")], {
    ...env,
    HF_HUB_OFFLINE: "1",
  });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(hub.requests.length, 0);

  // eval on a hub-served MedMCQA (Parquet, 0-based cop), and MedQA from its default repo without --data.
  hub.add({
    type: "dataset",
    id: "org/medmcqa",
    files: {
      "data/validation-00000-of-00001.parquet": new Uint8Array(medmcqaParquet(3, (i) => i)),
      "data/train-00000-of-00001.parquet": new Uint8Array(medmcqaParquet(2, () => 1)),
      "data/test-00000-of-00001.parquet": new Uint8Array(medmcqaParquet(2, () => -1)),
    },
  });
  const model = join(d.path, "run");
  const out = join(d.path, "eval");
  const mc = await run("eval", [
    "medmcqa",
    "--data",
    "org/medmcqa",
    "--model",
    model,
    "--shots",
    "1",
    "--out",
    out,
  ], env);
  assert.equal(mc.code, 0, mc.stderr);
  assert.match(mc.stderr, /medmcqa: hub dataset org\/medmcqa: validation split/);
  assert.match(mc.stdout, /\| medmcqa \| loglik \| 1 \| 3 \| /);
  assert.ok(
    !hub.requests.some((r) => r.path.includes("test-00000")),
    "the unlabeled test split is not fetched",
  );

  const jind = (i: number) => ({
    question: `Q${i}?`,
    answer: "b",
    options: { A: "a", B: "b", C: "c", D: "d" },
    meta_info: "step1",
    answer_idx: "ABCD"[i % 4],
  });
  const lines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify(jind(i))).join("\n") + "\n";
  hub.add({
    type: "dataset",
    id: HUB_BENCHMARK_REPOS.medqa,
    files: { "phrases_no_exclude_test.jsonl": lines(4), "phrases_no_exclude_train.jsonl": lines(2) },
  });
  const mq = await run("eval", ["medqa", "--model", model, "--out", out], env);
  assert.equal(mq.code, 0, mq.stderr);
  assert.match(
    mq.stderr,
    /NO --data GIVEN: evaluating medqa from the Hugging Face Hub dataset GBaker\/MedQA-USMLE-4-options/,
  );
  assert.match(mq.stdout, /\| medqa \| loglik \| 0 \| 4 \| /);

  // eval --model of the hub model itself (converted on the fly); results under runs/hub--org--tiny by default.
  const hm = await run("eval", ["demo", "--model", "org/tiny", "--limit", "2", "--out", out], env);
  assert.equal(hm.code, 0, hm.stderr);
  assert.match(hm.stderr, /converting the Hugging Face checkpoint .*models--org--tiny/);

  // chat --model of the hub model, reading one question from a pipe (served from the cache, named by repo).
  const chat = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI("chat"), "--model", "org/tiny", "--max-tokens", "2"],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = chat.stdin.getWriter();
  await w.write(new TextEncoder().encode("What is asthma?\n"));
  await w.close();
  const chatOut = await chat.output();
  assert.equal(chatOut.code, 0, new TextDecoder().decode(chatOut.stderr));
  assert.match(new TextDecoder().decode(chatOut.stderr), /model org\/tiny,/);

  // finetune --init of the hub model (vocabulary grown by the chat tokens), one step.
  const sft = join(d.path, "sft.jsonl");
  Deno.writeTextFileSync(sft, JSON.stringify({ prompt: "Best test for anemia?", gold: "CBC" }) + "\n");
  const ft = await run("finetune", [
    ...["--init", "org/tiny", "--data", sft, "--name", "ft", "--out", d.path],
    ...["--steps", "1", "--micro-batch", "1", "--grad-accum", "1"],
  ], env);
  assert.equal(ft.code, 0, ft.stderr);
  assert.match(ft.stderr, /init: org\/tiny -> /);
  assert.ok(Deno.statSync(join(d.path, "ft", "checkpoints", "latest")).isFile);

  // data clean --input of one file of a hub dataset.
  const docs = Array.from({ length: 3 }, (_, i) => JSON.stringify({ text: `document ${i}` })).join("\n") +
    "\n";
  hub.add({
    type: "dataset",
    id: "org/replay",
    files: { "raw/part-0.jsonl": docs, "raw/part-1.jsonl": "{}" },
  });
  const cleaned = join(d.path, "replay.jsonl");
  const dc = await run("data", [
    ...["clean", "--source", "replay", "--keep-rate", "1", "--quiet", "--output", cleaned],
    ...["--input", "hf://datasets/org/replay/raw/part-0.jsonl"],
  ], env);
  assert.equal(dc.code, 0, dc.stderr);
  assert.equal(Deno.readTextFileSync(cleaned).trim().split("\n").length, 3);
  const two = await run("data", [
    "clean",
    "--source",
    "replay",
    "--keep-rate",
    "1",
    "--input",
    "org/replay",
    "--output",
    cleaned,
  ], env);
  assert.match(
    two.stderr,
    /the hub dataset has 2 \.jsonl files .*name one as hf:\/\/datasets\/org\/replay\/FILE/,
  );

  // Gated: one line that says how to get access.
  hub.add({ type: "model", id: "meta-llama/Llama-2-7b-hf", files, token: "hf_good" });
  const llama = ["hf-to-native", "--in", "meta-llama/Llama-2-7b-hf", "--out", join(d.path, "g")];
  const gated = await run("convert", llama, env);
  assert.equal(gated.code, 1);
  assert.match(
    gated.stderr,
    /^error: meta-llama\/Llama-2-7b-hf is gated or private \(HTTP 401.*accept the license.*HF_TOKEN.*huggingface-cli login/m,
  );
  const ok = await run("convert", llama, { ...env, HF_TOKEN: "hf_good" });
  assert.equal(ok.code, 0, ok.stderr);

  // Neither a local path nor a repository: both are said.
  const nothing = await run(
    "convert",
    ["hf-to-native", "--in", "org/nothing", "--out", join(d.path, "n")],
    env,
  );
  assert.match(
    nothing.stderr,
    /^error: no local path 'org\/nothing', and as a hub repository: org\/nothing: no such model repository/m,
  );

  // Offline and not cached: the error names the repository.
  const none = await run("eval", ["pubmedqa", "--model", model], { ...env, HF_HUB_OFFLINE: "1" });
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /error: dataset bigbio\/pubmed_qa@refs\/convert\/parquet is not in the hub cache .*HF_HUB_OFFLINE/,
  );

  // eval all --data hub: every benchmark from its default repository (revisions included), one table.
  const [medmcqaRepo] = HUB_BENCHMARK_REPOS.medmcqa.split("@");
  hub.add({
    type: "dataset",
    id: medmcqaRepo,
    files: { "data/validation-00000-of-00001.parquet": new Uint8Array(medmcqaParquet(2, (i) => i)) },
  });
  const [pubRepo, pubRev] = HUB_BENCHMARK_REPOS.pubmedqa.split("@");
  hub.add({
    type: "dataset",
    id: pubRepo,
    revisions: [pubRev],
    files: {
      "pubmed_qa_labeled_fold0_source/test/0000.parquet": new Uint8Array(
        pubmedqaParquet(["Does A?", "Does B?", "Does C?"], ["yes", "no", "maybe"]),
      ),
    },
  });
  const [mmluRepo, mmluRev] = HUB_BENCHMARK_REPOS.mmlu.split("@");
  hub.add({
    type: "dataset",
    id: mmluRepo,
    revisions: [mmluRev],
    files: { "anatomy/test/0000.parquet": new Uint8Array(lukaemonMmluParquet(5)) },
  });
  const all = await run(
    "eval",
    ["all", "--data", "hub", "--model", model, "--limit", "2", "--out", out],
    env,
  );
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stderr, /--data hub: every benchmark from its Hugging Face Hub dataset/);
  for (const row of ["medqa", "medmcqa", "pubmedqa", "mmlu", "demo"]) {
    assert.match(all.stdout, new RegExp(`\\| ${row} \\| loglik \\| 0 \\| 2 \\| `), row);
  }
});

Deno.test("a missing local path that looks like org/name is not looked up when its first directory exists", async () => {
  using d = tempDir();
  Deno.mkdirSync(join(d.path, "runs"));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI("convert"), "hf-to-native", "--in", "runs/nothing", "--out", join(d.path, "o")],
    cwd: d.path,
    env: { HF_ENDPOINT: "http://127.0.0.1:9", HF_HOME: join(d.path, "hf") },
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.ok(!err.includes("127.0.0.1:9") && !err.includes("hub"), err);
});
