/**
 * The one question type every benchmark loader produces.
 *
 * @module
 */

/**
 * How a question's answer is written: an option letter ("A", "B", …: MedQA, MedMCQA, MMLU, the demo set) or
 * an answer word shown nowhere in the prompt ("yes" / "no" / "maybe": PubMedQA).
 *
 * @example
 * ```ts
 * import type { AnswerKind } from "./question.ts";
 * const kind: AnswerKind = "word";
 * ```
 */
export type AnswerKind = "letter" | "word";

/**
 * A multiple-choice question as loaded from a benchmark file, with the gold as an option index.
 *
 * @example
 * ```ts
 * import type { MCQuestion } from "./question.ts";
 * const q: MCQuestion = {
 *   id: "medqa/test/1",
 *   question: "Which vitamin deficiency causes scurvy?",
 *   options: ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"],
 *   answer: 1,
 *   kind: "letter",
 *   where: "test.jsonl:1",
 * };
 * ```
 */
export interface MCQuestion {
  /** Stable id (file line, dataset id, or PMID). */
  id: string;
  /** The question text exactly as in the file (PubMedQA: contexts joined by "\n", then the question). */
  question: string;
  /** Option texts in label order (PubMedQA: `["yes", "no", "maybe"]`). */
  options: string[];
  /** Index of the gold option in {@linkcode MCQuestion.options}. */
  answer: number;
  /** Letter-labelled options shown in the prompt, or answer words. */
  kind: AnswerKind;
  /** Subject for per-subject accuracy (MedMCQA `subject_name`, MMLU subject, demo organ system). */
  subject?: string;
  /** MedQA `meta_info` ("step1", "step2&3"), or the demo question type. */
  meta?: string;
  /** Where it came from, for messages: `file:line` or `file#key`. */
  where: string;
  /** PubMedQA: the abstract (contexts joined by "\n") that {@linkcode MCQuestion.question} starts with. */
  context?: string;
}

/**
 * The answer labels of a question: "A", "B", … for letter questions, the option words for word questions.
 *
 * @example
 * ```ts
 * import { answerLabels } from "./question.ts";
 * answerLabels({ id: "x", question: "q", options: ["a", "b", "c"], answer: 0, kind: "letter", where: "f:1" });
 * // ["A", "B", "C"]
 * ```
 */
export function answerLabels(q: MCQuestion): string[] {
  return q.kind === "letter" ? q.options.map((_, i) => String.fromCharCode(65 + i)) : [...q.options];
}
