// `deno task pretrain` as a user runs it: help, flag errors, and a short end-to-end run without a TTY.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers.ts";

const CLI = new URL("../../cli/pretrain.ts", import.meta.url).pathname;

async function run(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Writes a 60-document JSONL corpus (document i's text is `text(i)`) to `dir/c.jsonl`; returns its path. */
function writeCorpus(dir: string, text: (i: number) => string): string {
  const corpus = join(dir, "c.jsonl");
  Deno.writeTextFileSync(
    corpus,
    Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: text(i) })).join("\n") + "\n",
  );
  return corpus;
}

/** Flags of run "t" under `dir` on `corpus`: a 1-layer dim-32 model, seq 32, micro-batch 2; then `extra`. */
function microRun(dir: string, corpus: string, extra: string[]): string[] {
  return [
    ...["--data", corpus, "--out", dir, "--name", "t", "--seq", "32", "--micro-batch", "2"],
    ...["--set", "model.n_layers=1", "--set", "model.dim=32", "--set", "model.ffn_dim=64"],
    ...extra,
  ];
}

Deno.test("--help lists the flags with examples", async () => {
  const r = await run(["--help"]);
  assert.equal(r.code, 0);
  for (const flag of ["--config", "--data", "--steps", "--out", "--resume", "--set", "Examples:"]) {
    assert.ok(r.stdout.includes(flag), flag);
  }
});

Deno.test("unknown flags and config errors are one line, no stack trace", async () => {
  const r = await run(["--stepz", "3"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*--stepz/);
  assert.ok(!r.stderr.includes("    at "), "no stack trace");
  const r2 = await run(["--set", "model.n_kv_heads=3"]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /error: command line: model.n_kv_heads \(3\) must divide model.n_heads \(4\)/);
  using dir = tempDir();
  const r3 = await run(["--data", "/nonexistent.jsonl", "--steps", "30", "--out", dir.path]);
  assert.match(r3.stderr, /error: \/nonexistent.jsonl: cannot read corpus/);
});

Deno.test("a short run on a JSONL corpus: plain progress lines, metrics, checkpoint, resume guard", async () => {
  using dir = tempDir();
  const corpus = writeCorpus(
    dir.path,
    (i) => `Patient ${i} with asthma was treated with inhaled albuterol and improved.`,
  );
  const argsFor = (steps: number) =>
    microRun(dir.path, corpus, [
      ...["--steps", String(steps), "--grad-accum", "1", "--eval-every", "3"],
      ...["--set", "train.warmup_steps=2"],
    ]);
  const args = argsFor(6);
  const r = await run(args);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stderr.includes("\x1b["), "no escape codes without a TTY");
  assert.match(r.stderr, /step 6\/6 loss [\d.]+ val [\d.]+ lr/);
  assert.match(r.stderr, /done: loss [\d.]+ -> [\d.]+, validation/);
  const metrics = Deno.readTextFileSync(join(dir.path, "t", "metrics.jsonl")).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(metrics.length, 6);
  assert.ok(metrics.every((m) => m.tokens_per_s > 0 && Number.isFinite(m.loss)));
  const again = await run(args);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already has checkpoints: pass --resume/);
  const resumed = await run([...argsFor(8), "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*iter_0000006/);
  assert.match(resumed.stderr, /step 8\/8/);
  // More steps recompute the cosine (as Megatron does), which is said.
  assert.match(
    resumed.stderr,
    /learning-rate schedule changed from the checkpoint's \(6 steps, warmup 2, cosine to step 6\) to 8 steps/,
  );
});

Deno.test("refused before any work: --resume with --overwrite, a layout the checkpoint lacks, bad data", async () => {
  using dir = tempDir();
  const corpus = writeCorpus(dir.path, (i) => `Case ${i}: anemia from iron deficiency responds to iron.`);
  const args = microRun(dir.path, corpus, ["--eval-every", "0", "--set", "train.warmup_steps=1"]);
  assert.equal((await run([...args, "--steps", "2"])).code, 0);
  const runDir = join(dir.path, "t"), config = Deno.readTextFileSync(join(runDir, "config.yaml"));
  const both = await run([...args, "--steps", "3", "--resume", "--overwrite"]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /^error: --resume continues a run's checkpoints and --overwrite deletes them/);
  // A tp 1 checkpoint resumed with --tp 2: the layout message, before any rank is launched.
  const tp2 = await run([...args, "--steps", "3", "--resume", "--tp", "2"]);
  assert.equal(tp2.code, 1);
  assert.equal(tp2.stderr.trim().split("\n").length, 1, tp2.stderr);
  assert.match(
    tp2.stderr,
    /iter_0000002: written with tp=1 pp=1 dp=1 zero1=false, this run is tp=2 .*reshard/,
  );
  // --overwrite with a corpus whose line 2 is broken: the error, and the old checkpoints are still there.
  const bad = join(dir.path, "bad.jsonl");
  Deno.writeTextFileSync(bad, '{"text": "fine"}\n{"text": broken\n');
  const over = await run([...args, "--steps", "3", "--overwrite", "--data", bad]);
  assert.equal(over.code, 1);
  assert.match(over.stderr, /bad.jsonl:2/);
  assert.equal(Deno.readTextFileSync(join(runDir, "checkpoints", "latest")).trim(), "iter_0000002");
  assert.equal(Deno.readTextFileSync(join(runDir, "config.yaml")), config, "config.yaml untouched");
});

Deno.test("--steps below the warmup shortens it with a notice; a new run failing before step 1 leaves no dir", async () => {
  using dir = tempDir();
  const corpus = writeCorpus(dir.path, (i) => `Visit ${i}: migraine prophylaxis with propranolol.`);
  // The tiny config's warmup is 20 steps: --steps 2 is a smoke test, not a configuration error.
  const r = await run(microRun(dir.path, corpus, ["--steps", "2", "--eval-every", "0"]));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /train.warmup_steps 20 > train.steps 2: warmup shortened to 0 steps/);
  // Token ids beyond the model's vocabulary: the error, and no run directory with config.yaml or metrics.
  const small = await run([
    ...microRun(dir.path, corpus, ["--steps", "2", "--eval-every", "0", "--set", "model.vocab_size=100"]),
    ...["--name", "small"],
  ]);
  assert.equal(small.code, 1);
  assert.match(small.stderr, /is outside model.vocab_size 100/);
  assert.ok(!existsSync(join(dir.path, "small")), "no run directory left");
});

Deno.test("SIGTERM mid-run: the step finishes, a checkpoint is written, exit 0, and --resume continues", async () => {
  using dir = tempDir();
  const corpus = writeCorpus(dir.path, (i) => `Note ${i}: hypothyroidism is treated with levothyroxine.`);
  const args = microRun(dir.path, corpus, [
    ...["--eval-every", "0", "--save-every", "0", "--set", "train.warmup_steps=1"],
  ]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args, "--steps", "100000"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const metrics = join(dir.path, "t", "metrics.jsonl");
  const lines = () => Deno.readTextFileSync(metrics).trim().split("\n").filter(Boolean).length;
  const deadline = Date.now() + 120_000;
  while (!(await Deno.stat(metrics).then(() => lines() >= 2, () => false))) {
    assert.ok(Date.now() < deadline, "no training steps within 120 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr.slice(-2000));
  const stopped = Number(stderr.match(/stopped at iteration (\d+) on request/)?.[1]);
  assert.ok(stopped >= 2, stderr.slice(-1000));
  assert.equal(
    Deno.readTextFileSync(join(dir.path, "t", "checkpoints", "latest")).trim(),
    `iter_${String(stopped).padStart(7, "0")}`,
  );
  const resumed = await run([...args, "--steps", String(stopped + 1), "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`step ${stopped + 1}/${stopped + 1}`));
});

Deno.test("a flipped byte in the latest checkpoint: --resume names the file, --resume auto falls back", async () => {
  using dir = tempDir();
  const corpus = writeCorpus(dir.path, (i) => `Entry ${i}: gout flares are treated with colchicine.`);
  const args = microRun(dir.path, corpus, [
    ...["--eval-every", "0", "--save-every", "2", "--set", "train.warmup_steps=1"],
  ]);
  assert.equal((await run([...args, "--steps", "4"])).code, 0);
  const shard = join(dir.path, "t", "checkpoints", "iter_0000004", "model-tp00-pp00.safetensors");
  const bytes = Deno.readFileSync(shard);
  bytes[bytes.length - 5] ^= 0x01;
  Deno.writeFileSync(shard, bytes);
  const config = Deno.readTextFileSync(join(dir.path, "t", "config.yaml"));
  const plain = await run([...args, "--steps", "6", "--resume"]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, new RegExp(`${shard.replaceAll("/", "\\/")}: sha256 mismatch`));
  assert.equal(
    Deno.readTextFileSync(join(dir.path, "t", "config.yaml")),
    config,
    "a failed resume keeps config.yaml",
  );
  // Resumed into a new run name: the failure leaves no new directory behind.
  const other = await run([...args, "--steps", "6", "--resume", join(dir.path, "t"), "--name", "u"]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /sha256 mismatch/);
  assert.ok(!existsSync(join(dir.path, "u")), "no run directory left");
  const auto = await run([...args, "--steps", "6", "--resume", "auto"]);
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(
    auto.stderr,
    /resume auto: skipping .*iter_0000004 \(model-tp00-pp00.safetensors: sha256 mismatch\)/,
  );
  assert.match(auto.stderr, /resumed from .*iter_0000002 \(iteration 2/);
});
