// `deno task eval` as a user runs it: help, usage errors, and short end-to-end runs on a freshly trained
// micro model (demo set, offline; MedQA fixtures with --data; sc-cot). A benchmark without --data comes from
// the hub: tests/cli/hub_cli_test.ts. Also: demo refuses --data; k-shot progress counts questions × seeds; MedMCQA's
// dev.jsonl is found.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers.ts";
import { saveInitModel } from "../sft/fixtures.ts";

const EVAL = fileURLToPath(new URL("../../cli/eval.ts", import.meta.url));
const PRETRAIN = fileURLToPath(new URL("../../cli/pretrain.ts", import.meta.url));
const FIX = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

async function run(cli: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("eval --help shows every benchmark, the flags and examples", async () => {
  const r = await run(EVAL, ["--help"]);
  assert.equal(r.code, 0);
  for (const s of ["medqa", "medmcqa", "pubmedqa", "mmlu", "demo", "all", "--data", "--model", "--shots"]) {
    assert.ok(r.stdout.includes(s), s);
  }
  for (const s of ["--mode", "--seeds", "--chat", "--format", "--limit", "--out", "Examples:"]) {
    assert.ok(r.stdout.includes(s), s);
  }
});

Deno.test("eval usage errors: unknown benchmark lists the known ones; bad flags are one line", async () => {
  const r = await run(EVAL, ["usmle"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^error: unknown benchmark 'usmle'; known: medqa, medmcqa, pubmedqa, mmlu, demo, all/,
  );
  const m = await run(EVAL, ["demo", "--mode", "beam"]);
  assert.match(m.stderr, /^error: unknown --mode 'beam' \(loglik, cloze, greedy, cot, sc-cot\)/);
  const f = await run(EVAL, ["demo", "--format", "continuation"]);
  assert.match(f.stderr, /^error: the continuation format lists no options: use it with mode "cloze"/);
  const s = await run(EVAL, ["demo", "--shots", "1.5"]);
  assert.match(s.stderr, /^error: --shots must be a whole number ≥ 0/);
  const none = await run(EVAL, []);
  assert.match(none.stderr, /^error: name one benchmark/);
  assert.ok(![r, m, f, s, none].some((x) => x.stderr.includes("    at ")), "no stack traces");
});

Deno.test("eval end to end on a micro model: demo (offline), MedQA fixtures, bad data file", async () => {
  using dir = tempDir();
  const corpus = join(dir.path, "c.jsonl");
  const docs = Array.from(
    { length: 40 },
    (_, i) => JSON.stringify({ text: `Patient ${i} had asthma; the answer is B.` }),
  );
  Deno.writeTextFileSync(corpus, docs.join("\n") + "\n");
  const pre = await run(PRETRAIN, [
    ...["--data", corpus, "--out", dir.path, "--name", "m", "--steps", "2", "--seq", "32"],
    ...["--micro-batch", "2", "--grad-accum", "1", "--eval-every", "2", "--set", "train.warmup_steps=1"],
    ...["--set", "model.n_layers=1", "--set", "model.dim=32", "--set", "model.ffn_dim=64"],
  ]);
  assert.equal(pre.code, 0, pre.stderr);
  const model = join(dir.path, "m");

  const demo = await run(EVAL, ["demo", "--model", model, "--limit", "4"]);
  assert.equal(demo.code, 0, demo.stderr);
  assert.ok(!demo.stderr.includes("NO --data"), "demo is offline and needs no --data"); // medqa: tests/cli/hub_cli_test.ts
  assert.match(demo.stdout, /\| demo \| loglik \| 0 \| 4 \| /);
  assert.match(demo.stdout, /DEMO SET: a toolkit check/);
  const summary = JSON.parse(Deno.readTextFileSync(join(model, "eval", "demo.json")));
  assert.equal(summary.questions, 4);
  assert.equal(
    Deno.readTextFileSync(join(model, "eval", "demo.generations.jsonl")).trim().split("\n").length,
    4,
  );

  const out = join(dir.path, "out");
  const medqa = await run(EVAL, [
    ...["medqa", "--model", model, "--data", FIX("medqa/test.jsonl"), "--shots", "1", "--seeds", "1,2"],
    ...["--mode", "sc-cot", "--samples", "2", "--max-tokens", "3", "--out", out],
  ]);
  assert.equal(medqa.code, 0, medqa.stderr);
  assert.ok(!medqa.stderr.includes("DEMO SET"));
  const r = JSON.parse(Deno.readTextFileSync(join(out, "medqa.json")));
  assert.deepEqual(r.perSeed.map((s: { seed: number }) => s.seed), [1, 2]);
  assert.equal(r.mode, "sc-cot");
  const gens = Deno.readTextFileSync(join(out, "medqa.generations.jsonl")).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(gens.length, 6);
  assert.ok(gens.every((g) => g.outputs.length === 2));

  // `all`: the benchmarks found under --data, the missing ones named, one table, summary.md.
  const data = join(dir.path, "bench");
  Deno.mkdirSync(join(data, "medqa"), { recursive: true });
  Deno.mkdirSync(join(data, "pubmedqa"), { recursive: true });
  Deno.copyFileSync(FIX("medqa/test.jsonl"), join(data, "medqa", "test.jsonl"));
  for (const f of ["ori_pqal.json", "test_ground_truth.json"]) {
    Deno.copyFileSync(FIX(`pubmedqa/${f}`), join(data, "pubmedqa", f));
  }
  const allOut = join(dir.path, "all");
  const all = await run(EVAL, ["all", "--model", model, "--data", data, "--limit", "2", "--out", allOut]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stderr, /SKIPPING medmcqa: no .*medmcqa/);
  assert.match(all.stderr, /SKIPPING mmlu: no .*mmlu/);
  const rows = all.stdout.split("\n").filter((l) => /^\| (medqa|pubmedqa|demo) /.test(l));
  assert.deepEqual(rows.map((l) => l.split(" ")[1]), ["medqa", "pubmedqa", "demo"]);
  assert.match(rows[1], /\| [\d.]+ \|$/, "PubMedQA has a macro-F1");
  const summaryMd = Deno.readTextFileSync(join(allOut, "summary.md"));
  assert.ok(summaryMd.split("\n").length === 6 && all.stdout.includes(summaryMd), summaryMd);
  const allDemo = await run(EVAL, ["all", "--model", model, "--limit", "2", "--out", allOut]);
  assert.match(allDemo.stderr, /NO --data GIVEN: 'all' evaluates only the DEMO SET/);

  const bad = await run(EVAL, ["medqa", "--model", model, "--data", join(dir.path, "missing.jsonl")]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: .*missing\.jsonl: file or directory not found/);
});

Deno.test("eval demo --data is a usage error (even for a path that exists)", async () => {
  using dir = tempDir();
  const r = await run(EVAL, ["demo", "--data", dir.path, "--model", join(dir.path, "no-model")]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^error: the demo set is generated from the embedded knowledge base and takes no --data/,
  );
  assert.match(r.stderr, /Usage: deno task eval/);
});

Deno.test("eval k-shot: progress and summary say questions × seeds; medmcqa finds dev.jsonl", async () => {
  using dir = tempDir();
  const model = join(dir.path, "run");
  await saveInitModel(model, { model: { max_seq: 256 } });
  const out = join(dir.path, "out");
  const shots = ["--shots", "1", "--model", model, "--out", out];
  const pub = await run(EVAL, ["pubmedqa", "--data", FIX("pubmedqa"), ...shots]);
  assert.equal(pub.code, 0, pub.stderr);
  assert.match(pub.stderr, /pubmedqa: 1\/6 answers \(2 questions × 3 seeds\)/);
  assert.match(pub.stderr, /pubmedqa: 2 questions × 3 seeds in [\d.]+ s/);
  assert.doesNotMatch(pub.stderr, /\/6 questions/);
  const mcq = await run(EVAL, ["medmcqa", "--data", FIX("medmcqa_raw"), "--model", model, "--out", out]);
  assert.equal(mcq.code, 0, mcq.stderr);
  assert.match(mcq.stderr, /medmcqa: 3 questions in [\d.]+ s/);
  assert.match(mcq.stderr, /train \(demonstrations\): .*train\.jsonl/);
});
