import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Tokenizer } from "../../data/tokenizer.ts";
import {
  type Benchmark,
  breakdownTables,
  continuationText,
  evaluate,
  loadBenchmark,
  markdownTable,
  type MCQuestion,
  scoringContext,
  writeResult,
} from "../../eval/mod.ts";
import { BigramModel, ScriptedModel } from "./fake_model.ts";
import { assertClose, tempDir } from "../helpers.ts";

const tok = Tokenizer.llama2();
const FIX = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

const mc = (i: number, answer: number, subject?: string): MCQuestion => ({
  id: `q${i}`,
  question: `Question number ${i} about medicine`,
  options: ["alpha", "beta", "gamma", "delta"],
  answer,
  kind: "letter",
  subject,
  where: `t:${i}`,
});

const bench = (test: MCQuestion[], train: MCQuestion[] = []): Benchmark => ({
  name: "medqa",
  test,
  train,
  notes: [],
  demosBySubject: false,
});

Deno.test("loglik: picks the highest-scoring option letter; scores equal brute-force full-sequence sums", async () => {
  const cTok = tok.encode("The answer is: C", { addBos: false }).at(-1)!;
  const model = new BigramModel(32000, new Map([[cTok, 6]]));
  const b = bench([mc(1, 2), mc(2, 0), mc(3, 2), mc(4, 1)]);
  const r = await evaluate(b, model, tok, { mode: "loglik" });
  assert.deepEqual(r.records.map((x) => x.pred), ["C", "C", "C", "C"]);
  assert.equal(r.perSeed[0].metrics.accuracy, 0.5);
  assert.equal(r.perSeed.length, 1, "0-shot runs once");
  assert.equal(r.perSeed[0].seed, null);
  assert.equal(model.scoreCalls, 4, "one scoring call per question: options share the context");
  for (const rec of r.records) {
    const ctx = scoringContext(rec.prompt, false);
    const brute = ["A", "B", "C", "D"].map((l) => {
      const ids = tok.encode(ctx + continuationText(ctx, l), { addBos: true });
      return model.sequenceLogprob(ids, tok.encode(ctx, { addBos: true }).length);
    });
    rec.logprobs!.forEach((lp, i) => assertClose(lp, brute[i], 1e-12, `${rec.id} option ${i}`));
  }
  // Without the bonus the choice follows the hash: still the argmax of the recorded scores.
  const plain = await evaluate(b, new BigramModel(32000), tok, { mode: "loglik" });
  for (const rec of plain.records) {
    const best = rec.logprobs!.indexOf(Math.max(...rec.logprobs!));
    assert.equal(rec.pred, "ABCD"[best]);
  }
});

Deno.test("cloze: scores each option's text and picks the most likely one", async () => {
  const delta = tok.encode("is: delta", { addBos: false }).at(-1)!; // " delta" is one token after "▁"
  const model = new BigramModel(32000, new Map([[delta, 6]]));
  const r = await evaluate(bench([mc(1, 3), mc(2, 0)]), model, tok, { mode: "cloze" });
  assert.deepEqual(r.records.map((x) => x.pred), ["D", "D"]);
  assert.equal(r.perSeed[0].metrics.accuracy, 0.5);
  for (const rec of r.records) {
    const ctx = scoringContext(rec.prompt, false);
    const brute = ["alpha", "beta", "gamma", "delta"].map((o) => {
      const ids = tok.encode(ctx + continuationText(ctx, o), { addBos: true });
      return model.sequenceLogprob(ids, tok.encode(ctx, { addBos: true }).length);
    });
    rec.logprobs!.forEach((lp, i) => assertClose(lp, brute[i], 1e-12, `${rec.id} option ${i}`));
  }
});

Deno.test("loglik on PubMedQA scores yes / no / maybe and can answer maybe", async () => {
  const pqa = await loadBenchmark("pubmedqa", FIX("pubmedqa"));
  const maybe = tok.encode("is: maybe", { addBos: false }).at(-1)!;
  const r = await evaluate(pqa, new BigramModel(32000, new Map([[maybe, 6]])), tok);
  assert.deepEqual(r.records.map((x) => x.pred), ["maybe", "maybe"]);
  assert.equal(r.records[0].logprobs!.length, 3);
  const m = r.perSeed[0].metrics;
  assert.equal(m.accuracy, 0.5);
  assert.ok(m.macroF1 !== undefined && m.macroF1 > 0);
  assert.ok(r.records[0].prompt.startsWith("As an expert doctor"));
});

Deno.test("k-shot: same demonstrations for every question of a seed, deterministic per seed, mean ± std over seeds", async () => {
  const demo = await loadBenchmark("demo");
  const b: Benchmark = { ...demo, test: demo.test.slice(0, 3) };
  const run = () => evaluate(b, new BigramModel(32000), tok, { shots: 3, seeds: [1234, 432, 32] });
  const r1 = await run(), r2 = await run();
  assert.deepEqual(r1.records.map((r) => r.prompt), r2.records.map((r) => r.prompt));
  assert.deepEqual(r1.perSeed.map((s) => s.seed), [1234, 432, 32]);
  const demosOf = (prompt: string) => prompt.slice(0, prompt.lastIndexOf("Question: "));
  for (const seed of [1234, 432, 32]) {
    const prompts = r1.records.filter((r) => r.seed === seed).map((r) => r.prompt);
    assert.equal(prompts.length, 3);
    assert.equal(new Set(prompts.map(demosOf)).size, 1, `seed ${seed}: one set of demonstrations`);
    assert.equal(demosOf(prompts[0]).split("The answer is: ").length - 1, 3, "3 demonstrations");
  }
  const firstBySeed = [1234, 432, 32].map((s) => demosOf(r1.records.find((r) => r.seed === s)!.prompt));
  assert.equal(new Set(firstBySeed).size, 3, "different seeds draw different demonstrations");
  const accs = r1.perSeed.map((s) => s.metrics.accuracy);
  const mean = accs.reduce((a, b) => a + b) / 3;
  assertClose(r1.accuracy.mean, mean, 1e-12, "mean");
  assertClose(r1.accuracy.std, Math.sqrt(accs.reduce((a, x) => a + (x - mean) ** 2, 0) / 2), 1e-9, "std");
  await assert.rejects(
    evaluate(bench([mc(1, 0)], [mc(2, 1)]), new BigramModel(32000), tok, { shots: 2 }),
    /2-shot needs 2 demonstrations but the train split has 1/,
  );
});

Deno.test("MMLU demonstrations come from the question's own subject", async () => {
  const mmlu = await loadBenchmark("mmlu", FIX("mmlu"));
  const r = await evaluate(mmlu, new BigramModel(32000), tok, { shots: 1, seeds: [1234] });
  for (const rec of r.records) {
    const demoPart = rec.prompt.slice(0, rec.prompt.lastIndexOf("Question: "));
    if (rec.subject === "nutrition") {
      assert.ok(demoPart.includes("Which mineral is in hemoglobin?"), rec.prompt);
    } else assert.ok(!demoPart.includes("hemoglobin"), rec.prompt);
  }
});

Deno.test("greedy: short generation, stop strings cut, Meditron extraction, unparseable counted", async () => {
  let call = 0;
  const outputs = [" B\n###Question: ignored", "The answer is B", " C </s>", " B"];
  const model = new ScriptedModel(tok, () => outputs[call++]);
  const r = await evaluate(bench([mc(1, 1), mc(2, 1), mc(3, 2), mc(4, 0)]), model, tok, { mode: "greedy" });
  assert.deepEqual(r.records.map((x) => x.pred), ["B", null, "C", "B"]);
  assert.equal(r.records[0].outputs[0].trim(), "B", "cut at the stop string");
  const m = r.perSeed[0].metrics;
  assert.equal(m.correct, 2);
  assert.equal(m.unparseable, 1);
  assert.equal(m.accuracyParseable, 2 / 3);
  for (const o of model.options) {
    assert.equal(o.maxTokens, 8);
    assert.equal(o.temperature, 0);
    assert.equal(o.frequencyPenalty, 1.0);
    assert.deepEqual(o.eos, [tok.eosId]);
    assert.ok(o.stop!.includes("###"));
  }
  assert.ok(
    model.prompts[0].endsWith("D. delta\nThe answer is:\n"),
    JSON.stringify(model.prompts[0].slice(-40)),
  );
});

Deno.test("cot: 'Let's think step by step.', up to 1024 tokens, answer after the last 'answer is'", async () => {
  const model = new ScriptedModel(
    tok,
    () => "First, the answer is not A. Weighing the findings, the answer is (C) gamma.\n### next",
  );
  const r = await evaluate(bench([mc(1, 2), mc(2, 0)]), model, tok, { mode: "cot" });
  assert.deepEqual(r.records.map((x) => x.pred), ["C", "C"]);
  assert.equal(model.options[0].maxTokens, 1024);
  assert.ok(model.prompts[0].endsWith("Let's think step by step.\n"));
});

Deno.test("sc-cot: 5 samples at temperature 0.8 with distinct seeds, majority vote", async () => {
  const answers = ["the answer is B", "the answer is C", "the answer is B", "no idea", "the answer is B"];
  let call = 0;
  const model = new ScriptedModel(tok, () => answers[call++ % 5]);
  const r = await evaluate(bench([mc(1, 1), mc(2, 2)]), model, tok, { mode: "sc-cot" });
  assert.deepEqual(r.records.map((x) => x.pred), ["B", "B"]);
  assert.equal(r.records[0].outputs.length, 5);
  assert.equal(model.options.length, 10);
  assert.ok(model.options.every((o) => o.temperature === 0.8));
  assert.equal(new Set(model.options.map((o) => o.seed)).size, 10, "every sample has its own seed");
  assert.equal(r.perSeed[0].metrics.accuracy, 0.5);
});

Deno.test("sampled generation is reproducible: the same run gives the same samples", async () => {
  const b = bench([mc(1, 1)]);
  const run = () => evaluate(b, new BigramModel(32000), tok, { mode: "sc-cot", samples: 3, maxTokens: 4 });
  const [x, y] = [await run(), await run()];
  assert.deepEqual(x.records[0].outputs, y.records[0].outputs);
  assert.equal(x.records[0].outputs.length, 3);
});

Deno.test("--chat wraps prompts; harness format uses 'Answer:'; limit; unknown mode rejected", async () => {
  const b = bench([mc(1, 1), mc(2, 2), mc(3, 3)]);
  const chatTok = Tokenizer.llama2({ chatTokens: true });
  const r = await evaluate(b, new BigramModel(32002), chatTok, { chat: true, limit: 2 });
  assert.equal(r.questions, 2);
  assert.equal(r.records.length, 2);
  assert.ok(r.records[0].prompt.startsWith("<|im_start|>question\nYou are a medical doctor"));
  assert.ok(r.records[0].prompt.endsWith("The answer is:\n<|im_end|>\n<|im_start|>answer\n"));
  const h = await evaluate(b, new BigramModel(32000), tok, { format: "harness", limit: 1 });
  assert.equal(
    h.records[0].prompt,
    "Question: Question number 1 about medicine\nA. alpha\nB. beta\nC. gamma\nD. delta\nAnswer:",
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    evaluate(b, new BigramModel(32000), tok, { mode: "beam" as any }),
    /unknown mode "beam"/,
  );
  const c = await evaluate(b, new BigramModel(32000), tok, {
    format: "continuation",
    mode: "cloze",
    limit: 1,
  });
  assert.equal(c.records[0].prompt, "Question: Question number 1 about medicine\nAnswer:");
  assert.equal(c.records[0].logprobs?.length, 4);
  await assert.rejects(
    evaluate(b, new BigramModel(32000), tok, { format: "continuation", mode: "loglik" }),
    /continuation format lists no options: use it with mode "cloze", not "loglik"/,
  );
});

Deno.test("outputs: {bench}.json without generations, generations JSONL, markdown table", async () => {
  const b = bench([mc(1, 1, "Anatomy"), mc(2, 2, "Pharmacology")]);
  b.test[0].meta = "step1";
  const r = await evaluate(b, new BigramModel(32000), tok, {});
  using dir = tempDir();
  const [json, gens, md] = await writeResult(join(dir.path, "eval"), r);
  assert.ok(json.endsWith("eval/medqa.json"));
  const summary = JSON.parse(await Deno.readTextFile(json));
  assert.equal(summary.records, undefined);
  assert.equal(summary.perSeed[0].metrics.n, 2);
  const lines = (await Deno.readTextFile(gens)).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].gold, "B");
  const table = await Deno.readTextFile(md);
  assert.equal(table, markdownTable([r]) + breakdownTables(r));
  const sub = r.perSeed[0].metrics.bySubject;
  assert.ok(table.includes(`| Anatomy | 1 | ${(100 * sub.Anatomy.accuracy).toFixed(1)} |`), table);
  assert.ok(table.includes("| Pharmacology | 1 |"));
  assert.ok(table.includes("| meta_info | n | accuracy % |\n|---|---:|---:|\n| step1 | 1 |"), table);
  assert.match(table, /^\| benchmark \| mode \| shots \|/);
  assert.match(table.split("\n")[2], /^\| medqa \| loglik \| 0 \| 2 \| /);
});

Deno.test("maxContext: prompts lose their oldest tokens, generation is capped, truncations counted", async () => {
  const model = new BigramModel(32000);
  const lengths: number[] = [];
  const spy = {
    vocabSize: model.vocabSize,
    score: (c: number[], k: number[][]) => {
      lengths.push(c.length + Math.max(...k.map((x) => x.length)));
      return model.score(c, k);
    },
    generate: model.generate.bind(model),
  };
  const b = bench([mc(1, 1), mc(2, 2)]);
  const full = await evaluate(b, spy, tok, {});
  assert.equal(full.truncated, 0);
  const longest = Math.max(...lengths);
  lengths.length = 0;
  const cut = await evaluate(b, spy, tok, { maxContext: 40 });
  assert.ok(longest > 40);
  assert.equal(cut.truncated, 2);
  assert.ok(lengths.every((n) => n === 40), `${lengths}`);
  const scripted = new ScriptedModel(tok, () => "the answer is B");
  const g = await evaluate(b, scripted, tok, { mode: "cot", maxContext: 64 });
  assert.equal(g.truncated, 2);
  assert.ok(scripted.options.every((o) => o.maxTokens === 32));
  assert.deepEqual(g.records.map((r) => r.pred), ["B", "B"]);
});
