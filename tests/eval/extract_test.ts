import assert from "node:assert/strict";
import { extractAnswer, type ExtractOptions, majorityVote } from "../../eval/mod.ts";

const L: ExtractOptions = { labels: ["A", "B", "C", "D"], kind: "letter", shots: false, cot: false };
const W: ExtractOptions = { labels: ["yes", "no", "maybe"], kind: "word", shots: false, cot: false };

Deno.test("letter answers: first character after cleaning, as Meditron", () => {
  assert.equal(extractAnswer(" B", L), 1);
  assert.equal(extractAnswer("\n(C) Measles", L), 2);
  assert.equal(extractAnswer("d.", L), 3);
  assert.equal(extractAnswer("**A**", L), 0);
  // Meditron takes the first character: "The answer is B" parses as "t" → unparseable.
  assert.equal(extractAnswer("The answer is B", L), null);
  // …and a sentence starting with the article "A" reads as option A (a known weakness, reproduced).
  assert.equal(extractAnswer("A patient like this needs C", L), 0);
  assert.equal(extractAnswer("E", L), null, "E is not an option of a 4-option question");
  assert.equal(extractAnswer("", L), null);
  assert.equal(extractAnswer("   ###", L), null);
});

Deno.test("'\\n##' headers and k-shot blank-line cut", () => {
  assert.equal(
    extractAnswer("blah\n## Answer\nirrelevant", L),
    0,
    "the line after '\\n##' is kept: ' answer'",
  );
  assert.equal(extractAnswer("x\n##C\nD", L), 2);
  const shot = { ...L, shots: true };
  assert.equal(extractAnswer(" B\n\nQuestion: next one… The answer is: C", shot), 1);
});

Deno.test("chain of thought: first word after the last 'answer is'", () => {
  const cot = { ...L, cot: true };
  assert.equal(extractAnswer("The answer is not A. Reconsidering, the answer is (C).", cot), 2);
  assert.equal(extractAnswer("Therefore the answer is: D) Ceftriaxone", cot), 3);
  assert.equal(extractAnswer("So, the ANSWER IS b", cot), 1);
  assert.equal(extractAnswer("I think the answer is", cot), null);
  assert.equal(extractAnswer("no conclusion here", cot), null, "no 'answer is': first word 'no' → 'n'");
  assert.equal(extractAnswer("step by step, answer is maybe", { ...W, cot: true }), 2);
});

Deno.test("PubMedQA words: 'maybe' is valid (Meditron's bug fixed), doubled words folded", () => {
  assert.equal(extractAnswer(" maybe", W), 2);
  assert.equal(extractAnswer("Maybe.", W), 2);
  assert.equal(extractAnswer("yes", W), 0);
  assert.equal(extractAnswer(" No!", W), 1);
  assert.equal(extractAnswer("yesyes", W), 0);
  assert.equal(extractAnswer("noyes", W), 1);
  assert.equal(
    extractAnswer("yes, because the study shows", W),
    null,
    "the whole cleaned answer must be a label",
  );
  assert.equal(extractAnswer("yes ✓", W), 0, "non-ASCII dropped");
});

Deno.test("majority vote: nulls abstain, ties to the first seen", () => {
  assert.equal(majorityVote([1, 2, 2, null, null, null, 1, 2]), 2);
  assert.equal(majorityVote([1, 2, 2, 1]), 1);
  assert.equal(majorityVote([3]), 3);
  assert.equal(majorityVote([null, null]), null);
  assert.equal(majorityVote([]), null);
});
