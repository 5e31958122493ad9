/**
 * Prompt construction, Meditron's protocol reproduced exactly, plus lm-evaluation-harness's format.
 *
 * Meditron: the question block is `"Question: " + q` ("?" appended unless q ends with "?" or "."), then
 * `"\n\nOptions:\n"` and `"A. opt\nB. opt…"` (PubMedQA shows no options). The prompt is
 * `"{system}\n{question block}\n{user}\n"` with user `"The answer is:"` (chain of thought:
 * `"Let's think step by step."`). k demonstrations `"{question block}\nThe answer is: {gold}"`, joined by blank
 * lines, go before the question block, and the prompt's final newline is dropped (Meditron's `format_prompt`
 * does `prompt[:-1]` with shots). `--chat` wraps the prompt as
 * `<|im_start|>question\n{prompt}<|im_end|>\n<|im_start|>answer\n`.
 *
 * Harness: `"Question: {q}\nA. …\nB. …\nAnswer:"` (PubMedQA `"Abstract: …\nQuestion: …\nAnswer:"`),
 * demonstrations `"…\nAnswer: {gold}"` joined by blank lines.
 *
 * Continuation (the harness's `*_continuation` tasks): `"Question: {q}\nAnswer:"` with no options listed, for
 * scoring each option's text (`--mode cloze`); demonstrations end `"\nAnswer: {gold option text}"`.
 *
 * @module
 */

import instructions from "./prompts/instructions.json" with { type: "json" };
import { answerLabels, type MCQuestion } from "./question.ts";

/**
 * Which prompt family: Meditron's (default), lm-evaluation-harness's multiple-choice one, or the harness's
 * continuation one (question only, options scored as text).
 *
 * @example
 * ```ts
 * import type { PromptFormat } from "./prompts.ts";
 * const f: PromptFormat = "harness";
 * ```
 */
export type PromptFormat = "meditron" | "harness" | "continuation";

/**
 * The prompt families, default first.
 *
 * @example
 * ```ts
 * import { PROMPT_FORMATS } from "./prompts.ts";
 * console.log(PROMPT_FORMATS.join(", ")); // "meditron, harness, continuation"
 * ```
 */
export const PROMPT_FORMATS: readonly PromptFormat[] = ["meditron", "harness", "continuation"];

/**
 * Options of {@linkcode buildPrompt}.
 *
 * @example
 * ```ts
 * import type { PromptOptions } from "./prompts.ts";
 * const o: PromptOptions = { system: "You are a doctor.", format: "meditron", cot: false, chat: false, demos: [] };
 * ```
 */
export interface PromptOptions {
  /** System text (Meditron format only); see {@linkcode systemText}. */
  system: string;
  /** Prompt family. */
  format: PromptFormat;
  /** Chain of thought: user text "Let's think step by step." (Meditron format). */
  cot: boolean;
  /** Wrap in Meditron's chat template. */
  chat: boolean;
  /** k-shot demonstrations, in order. */
  demos: readonly MCQuestion[];
}

/** Meditron's user text after the question ("The answer is:"). */
export const USER_TEXT: string = instructions.user;
/** Meditron's chain-of-thought user text ("Let's think step by step."). */
export const COT_USER_TEXT: string = instructions.cotUser;

/**
 * The system text for a benchmark from `prompts/instructions.json`: MedQA's USMLE text (A to E, or A to D for
 * 4 options, which the demo set also uses), MedMCQA's entrance-exam text (also for MMLU), PubMedQA's
 * yes/no/maybe text.
 *
 * @example
 * ```ts
 * import { systemText } from "./prompts.ts";
 * systemText("medqa", 4).includes("from A to D"); // true
 * systemText("mmlu", 4) === systemText("medmcqa", 4); // true
 * ```
 */
export function systemText(benchmark: string, optionCount: number): string {
  const s = instructions.system;
  switch (benchmark) {
    case "medqa":
    case "demo":
      return optionCount === 4 ? s.medqa4 : s.medqa;
    case "medmcqa":
    case "mmlu":
      return s.medmcqa;
    case "pubmedqa":
      return s.pubmedqa;
    default:
      throw new Error(`no system text for benchmark "${benchmark}"`);
  }
}

/**
 * `"Question: " + q`, with "?" appended unless q (ignoring trailing whitespace) ends with "?" or ".".
 *
 * @example
 * ```ts
 * import { questionLine } from "./prompts.ts";
 * questionLine("Which drug is first-line"); // "Question: Which drug is first-line?"
 * questionLine("Pick one."); // "Question: Pick one."
 * ```
 */
export function questionLine(q: string): string {
  const text = q.trimEnd();
  return `Question: ${text}${text.endsWith("?") || text.endsWith(".") ? "" : "?"}`;
}

/**
 * Meditron's question block: the question line, then `"\n\nOptions:\n"` and one `"A. opt"` line per option
 * (`format_mcq`); an answer-word question (PubMedQA) is its text as it is, `"{contexts}\n{question}"`, with no
 * `Question:` prefix and no `?` added (`ClosedPubMedQA`).
 *
 * @example
 * ```ts
 * import { questionBlock } from "./prompts.ts";
 * questionBlock({ id: "1", question: "Best test?", options: ["ECG", "CT"], answer: 0, kind: "letter", where: "f:1" });
 * // "Question: Best test?\n\nOptions:\nA. ECG\nB. CT"
 * ```
 */
export function questionBlock(q: MCQuestion): string {
  if (q.kind === "word") return q.question;
  const labels = answerLabels(q);
  return `${questionLine(q.question)}\n\nOptions:\n${
    q.options.map((o, i) => `${labels[i]}. ${o}`).join("\n")
  }`;
}

/**
 * lm-evaluation-harness's question block: `"Question: {q}\nA. …\nB. …"` (without the option lines when
 * `listOptions` is false, as the continuation format); PubMedQA: `"Abstract: {contexts}\nQuestion: {question}"`.
 *
 * @example
 * ```ts
 * import { harnessBlock } from "./prompts.ts";
 * harnessBlock({ id: "1", question: "Best test?", options: ["ECG", "CT"], answer: 0, kind: "letter", where: "f:1" });
 * // "Question: Best test?\nA. ECG\nB. CT"
 * ```
 */
export function harnessBlock(q: MCQuestion, listOptions = true): string {
  if (q.context !== undefined && q.question.startsWith(`${q.context}\n`)) {
    return `Abstract: ${q.context}\nQuestion: ${q.question.slice(q.context.length + 1).trimEnd()}`;
  }
  const head = `Question: ${q.question.trimEnd()}`;
  if (q.kind === "word" || !listOptions) return head;
  const labels = answerLabels(q);
  return `${head}\n${q.options.map((o, i) => `${labels[i]}. ${o}`).join("\n")}`;
}

/**
 * The gold label of a question as written after "The answer is: " ("B", or "maybe").
 *
 * @example
 * ```ts
 * import { goldLabel } from "./prompts.ts";
 * goldLabel({ id: "1", question: "q", options: ["x", "y"], answer: 1, kind: "letter", where: "f:1" }); // "B"
 * ```
 */
export function goldLabel(q: MCQuestion): string {
  return answerLabels(q)[q.answer];
}

/**
 * The gold answer as text: the gold option's text for lettered questions, the label ("maybe") otherwise.
 *
 * @example
 * ```ts
 * import { goldText } from "./prompts.ts";
 * goldText({ id: "1", question: "q", options: ["x", "y"], answer: 1, kind: "letter", where: "f:1" }); // "y"
 * ```
 */
export function goldText(q: MCQuestion): string {
  return q.kind === "letter" ? q.options[q.answer] : goldLabel(q);
}

/**
 * Meditron's chat template around a prompt.
 *
 * @example
 * ```ts
 * import { chatWrap } from "./prompts.ts";
 * chatWrap("Hi\n"); // "<|im_start|>question\nHi\n<|im_end|>\n<|im_start|>answer\n"
 * ```
 */
export function chatWrap(prompt: string): string {
  return `<|im_start|>question\n${prompt}<|im_end|>\n<|im_start|>answer\n`;
}

/**
 * The full prompt for a question: system, demonstrations, question block, user text (or the harness format),
 * chat-wrapped on request.
 *
 * @example
 * ```ts
 * import { buildPrompt } from "./prompts.ts";
 * const q = { id: "1", question: "Best test", options: ["ECG", "CT"], answer: 0, kind: "letter" as const, where: "f:1" };
 * buildPrompt(q, { system: "SYS", format: "meditron", cot: false, chat: false, demos: [] });
 * // "SYS\nQuestion: Best test?\n\nOptions:\nA. ECG\nB. CT\nThe answer is:\n"
 * ```
 */
export function buildPrompt(q: MCQuestion, options: PromptOptions): string {
  let prompt: string;
  if (options.format === "harness") {
    const demos = options.demos.map((d) => `${harnessBlock(d)}\nAnswer: ${goldLabel(d)}\n\n`).join("");
    prompt = `${demos}${harnessBlock(q)}\nAnswer:`;
  } else if (options.format === "continuation") {
    const demos = options.demos.map((d) => `${harnessBlock(d, false)}\nAnswer: ${goldText(d)}\n\n`).join("");
    prompt = `${demos}${harnessBlock(q, false)}\nAnswer:`;
  } else {
    const demos = options.demos.map((d) => `${questionBlock(d)}\n${USER_TEXT} ${goldLabel(d)}\n\n`).join("");
    const user = options.cot ? COT_USER_TEXT : USER_TEXT;
    prompt = `${options.system}\n${demos}${questionBlock(q)}\n${user}\n`;
    // Meditron's format_prompt drops the last character when there are shots: the answer then continues
    // "The answer is:" on the same line, as in the demonstrations.
    if (options.demos.length > 0) prompt = prompt.slice(0, -1);
  }
  return options.chat ? chatWrap(prompt) : prompt;
}

/**
 * The context a log-likelihood scorer conditions on: the prompt without the trailing newline after
 * "The answer is:" (so the scored answer continues that line as the demonstrations do), the chat prompt as is.
 *
 * @example
 * ```ts
 * import { scoringContext } from "./prompts.ts";
 * scoringContext("SYS\nQuestion: q?\nThe answer is:\n", false); // "SYS\nQuestion: q?\nThe answer is:"
 * ```
 */
export function scoringContext(prompt: string, chat: boolean): string {
  return chat ? prompt : prompt.replace(/\n$/, "");
}

/**
 * The continuation text scored for one answer label: `" A"` after a context ending in text, `"A"` after one
 * ending in whitespace (the chat template).
 *
 * @example
 * ```ts
 * import { continuationText } from "./prompts.ts";
 * continuationText("The answer is:", "maybe"); // " maybe"
 * continuationText("<|im_start|>answer\n", "B"); // "B"
 * ```
 */
export function continuationText(context: string, label: string): string {
  return /\s$/.test(context) ? label : ` ${label}`;
}
