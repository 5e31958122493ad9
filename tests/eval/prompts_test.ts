import assert from "node:assert/strict";
import {
  buildPrompt,
  chatWrap,
  continuationText,
  COT_USER_TEXT,
  type MCQuestion,
  questionBlock,
  questionLine,
  scoringContext,
  systemText,
  USER_TEXT,
} from "../../eval/mod.ts";

const q = (
  question: string,
  options: string[],
  answer: number,
  kind: "letter" | "word" = "letter",
): MCQuestion => ({
  id: question,
  question,
  options,
  answer,
  kind,
  where: "t:1",
});

const MEDQA4 =
  "You are a medical doctor taking the US Medical Licensing Examination. You need to demonstrate your understanding of basic and clinical science, medical knowledge, and mechanisms underlying health, disease, patient care, and modes of therapy. Show your ability to apply the knowledge essential for medical practice. For the following multiple-choice question, select one correct answer from A to D. Base your answer on the current and standard practices referenced in medical guidelines.";

Deno.test("system texts: Meditron's per benchmark, from the one data file", () => {
  assert.equal(systemText("medqa", 4), MEDQA4);
  assert.equal(systemText("medqa", 5), MEDQA4.replace("from A to D", "from A to E"));
  assert.equal(systemText("demo", 4), MEDQA4);
  assert.ok(
    systemText("medmcqa", 4).startsWith(
      "You are a medical doctor answering real-world medical entrance exam questions.",
    ),
  );
  assert.equal(systemText("mmlu", 4), systemText("medmcqa", 4));
  assert.ok(systemText("pubmedqa", 3).endsWith("Answer yes, no, or maybe."));
  assert.throws(() => systemText("gsm8k", 4), /no system text/);
  assert.equal(USER_TEXT, "The answer is:");
  assert.equal(COT_USER_TEXT, "Let's think step by step.");
});

Deno.test("question line: '?' appended unless the question ends with '?' or '.'", () => {
  assert.equal(questionLine("Which artery is occluded"), "Question: Which artery is occluded?");
  assert.equal(questionLine("Which artery is occluded?"), "Question: Which artery is occluded?");
  assert.equal(questionLine("Koplik spots are seen in"), "Question: Koplik spots are seen in?");
  assert.equal(questionLine("Choose the best option."), "Question: Choose the best option.");
  assert.equal(questionLine("Which artery is occluded? "), "Question: Which artery is occluded?");
  assert.equal(questionLine("Drug of choice:"), "Question: Drug of choice:?");
});

Deno.test("0-shot Meditron prompt, character for character", () => {
  const item = q("Which vitamin deficiency causes scurvy", [
    "Vitamin A",
    "Vitamin C",
    "Vitamin D",
    "Vitamin K",
  ], 1);
  const prompt = buildPrompt(item, { system: "SYS", format: "meditron", cot: false, chat: false, demos: [] });
  assert.equal(
    prompt,
    "SYS\nQuestion: Which vitamin deficiency causes scurvy?\n\nOptions:\nA. Vitamin A\nB. Vitamin C\nC. Vitamin D\nD. Vitamin K\nThe answer is:\n",
  );
  const cot = buildPrompt(item, { system: "SYS", format: "meditron", cot: true, chat: false, demos: [] });
  assert.ok(cot.endsWith("D. Vitamin K\nLet's think step by step.\n"));
});

Deno.test("k-shot Meditron prompt: demonstrations joined by blank lines, before the question, last newline dropped", () => {
  const d1 = q("Wrist drop: which nerve?", ["Ulnar", "Radial"], 1);
  const d2 = q("Drug for anaphylaxis.", ["Epinephrine", "Albuterol"], 0);
  const test = q("Barking cough: cause", ["RSV", "Parainfluenza"], 1);
  const prompt = buildPrompt(test, {
    system: "SYS",
    format: "meditron",
    cot: false,
    chat: false,
    demos: [d1, d2],
  });
  assert.equal(
    prompt,
    "SYS\n" +
      "Question: Wrist drop: which nerve?\n\nOptions:\nA. Ulnar\nB. Radial\nThe answer is: B\n\n" +
      "Question: Drug for anaphylaxis.\n\nOptions:\nA. Epinephrine\nB. Albuterol\nThe answer is: A\n\n" +
      "Question: Barking cough: cause?\n\nOptions:\nA. RSV\nB. Parainfluenza\nThe answer is:",
  );
});

Deno.test("PubMedQA prompt: no options, gold word after 'The answer is:'", () => {
  const demo = q("ctx one\nIs it so?", ["yes", "no", "maybe"], 2, "word");
  const test = q("ctx a\nctx b\nDoes it work", ["yes", "no", "maybe"], 0, "word");
  // Meditron's ClosedPubMedQA: f"{context}\n{QUESTION}", no "Question:" prefix, no "?" added.
  assert.equal(questionBlock(test), "ctx a\nctx b\nDoes it work");
  assert.equal(
    buildPrompt(test, { system: "P", format: "meditron", cot: false, chat: false, demos: [demo] }),
    "P\nctx one\nIs it so?\nThe answer is: maybe\n\nctx a\nctx b\nDoes it work\nThe answer is:",
  );
});

Deno.test("chat wrapper and harness format, character for character", () => {
  const item = q("Best test", ["ECG", "CT"], 0);
  assert.equal(chatWrap("X\n"), "<|im_start|>question\nX\n<|im_end|>\n<|im_start|>answer\n");
  assert.equal(
    buildPrompt(item, { system: "S", format: "meditron", cot: false, chat: true, demos: [] }),
    "<|im_start|>question\nS\nQuestion: Best test?\n\nOptions:\nA. ECG\nB. CT\nThe answer is:\n<|im_end|>\n<|im_start|>answer\n",
  );
  const demo = q("Scurvy vitamin?", ["A", "C"], 1);
  assert.equal(
    buildPrompt(item, { system: "ignored", format: "harness", cot: false, chat: false, demos: [demo] }),
    "Question: Scurvy vitamin?\nA. A\nB. C\nAnswer: B\n\nQuestion: Best test\nA. ECG\nB. CT\nAnswer:",
  );
});

Deno.test("continuation format: question only, demonstrations answered with the option text", () => {
  const item = q("Best test", ["ECG", "CT"], 0);
  const demo = q("Scurvy vitamin?", ["vitamin A", "vitamin C"], 1);
  assert.equal(
    buildPrompt(item, { system: "ignored", format: "continuation", cot: false, chat: false, demos: [demo] }),
    "Question: Scurvy vitamin?\nAnswer: vitamin C\n\nQuestion: Best test\nAnswer:",
  );
  const word: MCQuestion = { ...q("c1\nDoes it work?", ["yes", "no", "maybe"], 2, "word"), context: "c1" };
  assert.equal(
    buildPrompt(word, { system: "", format: "continuation", cot: false, chat: false, demos: [word] }),
    "Abstract: c1\nQuestion: Does it work?\nAnswer: maybe\n\nAbstract: c1\nQuestion: Does it work?\nAnswer:",
  );
});

Deno.test("harness PubMedQA prompt: 'Abstract: …\nQuestion: …\nAnswer:'", () => {
  const item: MCQuestion = {
    ...q("c1\nc2\nDoes it work?", ["yes", "no", "maybe"], 2, "word"),
    context: "c1\nc2",
  };
  assert.equal(
    buildPrompt(item, { system: "", format: "harness", cot: false, chat: false, demos: [] }),
    "Abstract: c1\nc2\nQuestion: Does it work?\nAnswer:",
  );
});

Deno.test("scoring context and continuation text", () => {
  assert.equal(scoringContext("S\nThe answer is:\n", false), "S\nThe answer is:");
  assert.equal(scoringContext("…Answer:", false), "…Answer:");
  assert.equal(scoringContext("<|im_start|>answer\n", true), "<|im_start|>answer\n");
  assert.equal(continuationText("The answer is:", "B"), " B");
  assert.equal(continuationText("Answer:", "maybe"), " maybe");
  assert.equal(continuationText("<|im_start|>answer\n", "B"), "B");
});
