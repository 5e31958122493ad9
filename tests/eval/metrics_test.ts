import assert from "node:assert/strict";
import { bootstrapCI, computeMetrics, type GradedAnswer, macroF1, meanStd } from "../../eval/mod.ts";
import { assertClose } from "../helpers.ts";

Deno.test("accuracy, accuracy over parseable, unparseable count, per-subject and per-meta", () => {
  const items: GradedAnswer[] = [
    { gold: 0, pred: 0, subject: "Anatomy", meta: "step1" },
    { gold: 1, pred: null, subject: "Anatomy", meta: "step1" },
    { gold: 2, pred: 1, subject: "Pharmacology", meta: "step2&3" },
    { gold: 3, pred: 3, subject: "Pharmacology" },
    { gold: 1, pred: 1 },
  ];
  const m = computeMetrics(items);
  assert.equal(m.n, 5);
  assert.equal(m.correct, 3);
  assert.equal(m.accuracy, 3 / 5);
  assert.equal(m.unparseable, 1);
  assert.equal(m.parseable, 4);
  assert.equal(m.accuracyParseable, 3 / 4);
  assert.deepEqual(m.bySubject, {
    Anatomy: { n: 2, correct: 1, accuracy: 0.5 },
    Pharmacology: { n: 2, correct: 1, accuracy: 0.5 },
  });
  assert.deepEqual(m.byMeta, {
    step1: { n: 2, correct: 1, accuracy: 0.5 },
    "step2&3": { n: 1, correct: 0, accuracy: 0 },
  });
  assert.equal(m.macroF1, undefined);
});

Deno.test("macro-F1 over yes/no/maybe, by hand", () => {
  // gold: yes yes no maybe maybe ; pred: yes no no maybe null
  const items: GradedAnswer[] = [
    { gold: 0, pred: 0 },
    { gold: 0, pred: 1 },
    { gold: 1, pred: 1 },
    { gold: 2, pred: 2 },
    { gold: 2, pred: null },
  ];
  // yes: tp1 fp0 fn1 → 2/3 ; no: tp1 fp1 fn0 → 2/3 ; maybe: tp1 fp0 fn1 → 2/3
  assertClose(macroF1(items, 3), 2 / 3, 1e-12, "macro-F1");
  // A model that never says "maybe" gets F1 0 on it, which pulls the macro average down.
  const noMaybe: GradedAnswer[] = [{ gold: 0, pred: 0 }, { gold: 1, pred: 1 }, { gold: 2, pred: 0 }];
  assertClose(macroF1(noMaybe, 3), (2 / 3 + 1 + 0) / 3, 1e-12, "macro-F1 without maybe");
  assert.equal(computeMetrics(items, { classes: 3 }).macroF1, macroF1(items, 3));
});

Deno.test("bootstrap CI: reproducible with a seed, brackets the accuracy, narrows with n", () => {
  const correct = Array.from({ length: 200 }, (_, i) => i % 10 < 7);
  const a = bootstrapCI(correct, 1000, 42);
  assert.deepEqual(bootstrapCI(correct, 1000, 42), a);
  assert.notDeepEqual(bootstrapCI(correct, 1000, 43), a);
  assert.ok(a[0] < 0.7 && 0.7 < a[1], `${a}`);
  // Normal approximation: half-width ≈ 1.96·sqrt(.7·.3/200) ≈ 0.0635.
  assertClose((a[1] - a[0]) / 2, 1.96 * Math.sqrt(0.21 / 200), 0.2, "CI half-width");
  const big = bootstrapCI(Array.from({ length: 2000 }, (_, i) => i % 10 < 7), 1000, 42);
  assert.ok(big[1] - big[0] < (a[1] - a[0]) / 2);
  assert.deepEqual(bootstrapCI([true, true], 100, 1), [1, 1]);
  assert.deepEqual(bootstrapCI([], 100, 1), [0, 0]);
});

Deno.test("mean ± sample std over seeds", () => {
  const { mean, std } = meanStd([0.5, 0.6, 0.7]);
  assertClose(mean, 0.6, 1e-12, "mean");
  assertClose(std, 0.1, 1e-12, "std");
  assert.deepEqual(meanStd([0.4]), { mean: 0.4, std: 0 });
});
