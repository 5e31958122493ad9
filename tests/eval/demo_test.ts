import assert from "node:assert/strict";
import { answersOverlap, DEMO_QUESTION_TYPES, demoQuestions, isDemoTrainCondition } from "../../eval/mod.ts";
import { CONDITIONS, conditionsOfSystems, getCondition } from "../../data/embedded/knowledge.ts";
import { loadBenchmark } from "../../eval/benchmarks/mod.ts";
import { renderCorpus } from "../../data/embedded/render.ts";

Deno.test("answer overlap: equal, contained, or sharing most content words", () => {
  assert.ok(
    answersOverlap("hemoglobin electrophoresis", "hemoglobin electrophoresis showing absent hemoglobin A"),
  );
  assert.ok(answersOverlap("Electrocardiogram", "12-lead electrocardiogram"));
  assert.ok(
    answersOverlap(
      "peripheral smear followed by bone marrow biopsy",
      "bone marrow biopsy with PML-RARA testing",
    ),
  );
  assert.ok(!answersOverlap("serum ferritin", "serum folate level"));
  assert.ok(!answersOverlap("serum vitamin B12 level", "serum folate level"));
  assert.ok(!answersOverlap("imatinib", "hydroxyurea"));
});

Deno.test("demo questions: 4 options, gold is the condition's fact, no distractor overlaps the gold or another", () => {
  const { test, train } = demoQuestions();
  assert.equal(test.length + train.length, CONDITIONS.length * DEMO_QUESTION_TYPES.length);
  for (const q of [...test, ...train]) {
    assert.equal(q.options.length, 4, q.id);
    const [, id, type] = q.id.split("/");
    const c = getCondition(id)!;
    const fact = {
      diagnosis: c.name,
      test: c.firstLineTest,
      treatment: c.firstLineTreatment,
      complication: c.complication,
    };
    assert.equal(q.options[q.answer], fact[type as keyof typeof fact], q.id);
    assert.equal(q.subject, c.system);
    assert.equal(q.meta, type);
    for (let i = 0; i < 4; i++) {
      for (let j = i + 1; j < 4; j++) {
        assert.ok(
          !answersOverlap(q.options[i], q.options[j]),
          `${q.id}: "${q.options[i]}" vs "${q.options[j]}"`,
        );
      }
    }
    assert.ok(q.question.endsWith("?"));
  }
  // The two conditions diagnosed by hemoglobin electrophoresis never appear as each other's distractor.
  const electro = [...test, ...train].filter((q) =>
    q.meta === "test" && /hemoglobin electrophoresis/.test(q.options[q.answer])
  );
  assert.ok(electro.length >= 2);
  for (const q of electro) {
    assert.equal(q.options.filter((o) => /hemoglobin electrophoresis/i.test(o)).length, 1, q.id);
  }
});

Deno.test("demo questions: deterministic per seed, gold positions spread, train/test split by condition", () => {
  const a = demoQuestions(), b = demoQuestions();
  assert.deepEqual(a, b);
  assert.notDeepEqual(demoQuestions(7).test.map((q) => q.answer), a.test.map((q) => q.answer));
  const counts = [0, 0, 0, 0];
  for (const q of a.test) counts[q.answer]++;
  for (const c of counts) assert.ok(c > a.test.length / 8, `gold positions ${counts}`);
  for (const q of a.train) assert.ok(isDemoTrainCondition(q.id.split("/")[1]));
  for (const q of a.test) assert.ok(!isDemoTrainCondition(q.id.split("/")[1]));
  assert.ok(a.train.length > 100 && a.test.length > 500, `${a.train.length} / ${a.test.length}`);
});

Deno.test("demo questions are phrased unlike the pretraining corpus", () => {
  const corpus = renderCorpus().map((d) => d.text).join("\n");
  for (const phrase of ["Which of the following", "comes to the clinic because of", "at greatest risk of"]) {
    assert.ok(!corpus.includes(phrase), phrase);
  }
});

Deno.test("demo questions of a subset of organ systems: questions and distractors from those systems only", async () => {
  const subset = conditionsOfSystems("cardiovascular,respiratory");
  assert.equal(
    subset.length,
    CONDITIONS.filter((c) => /^(cardiovascular|respiratory)$/.test(c.system)).length,
  );
  assert.equal(conditionsOfSystems("all"), CONDITIONS);
  assert.throws(
    () => conditionsOfSystems("cardiovascular,cardio"),
    /unknown organ system 'cardio' \(known: all, /,
  );
  const bench = await loadBenchmark("demo", undefined, { systems: "cardiovascular,respiratory" });
  assert.match(bench.notes[0], /organ systems: cardiovascular,respiratory/);
  const { test, train } = demoQuestions(undefined, "cardiovascular,respiratory");
  assert.deepEqual(bench.test, test);
  assert.equal(test.length + train.length, subset.length * DEMO_QUESTION_TYPES.length);
  const facts = new Set(
    subset.flatMap((c) => [c.name, c.firstLineTest, c.firstLineTreatment, c.complication]),
  );
  for (const q of [...test, ...train]) {
    assert.ok(q.subject === "cardiovascular" || q.subject === "respiratory", q.id);
    for (const o of q.options) assert.ok(facts.has(o), `${q.id}: "${o}" is not a fact of the subset`);
  }
  await assert.rejects(() => loadBenchmark("medqa", "x.jsonl", { systems: "renal" }), /demo set only/);
});
