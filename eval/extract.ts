/**
 * Answer extraction from generated text, as Meditron's `evaluate.py`, with its PubMedQA bug fixed: "maybe" is
 * a valid answer (Meditron's accepted set `a–e, yes, no` omits it, scoring every "maybe" wrong).
 *
 * Steps (on the lower-cased output): keep the line after a `"\n##"` header if there is one; with k-shot keep
 * the text before the first blank line; replace every non-alphanumeric character by a space and collapse
 * spaces; for chain of thought take the first word after the last "answer is"; for letter questions take the
 * first character; for answer-word questions fold doubled words ("yesyes", "yesno", …) as Meditron does and
 * drop non-ASCII. The result must be one of the question's labels, else the output is unparseable.
 *
 * @module
 */

/**
 * Options of {@linkcode extractAnswer}.
 *
 * @example
 * ```ts
 * import type { ExtractOptions } from "./extract.ts";
 * const o: ExtractOptions = { labels: ["A", "B", "C", "D"], kind: "letter", shots: false, cot: true };
 * ```
 */
export interface ExtractOptions {
  /** Valid answers ("A"…, or "yes"/"no"/"maybe"); matched case-insensitively. */
  labels: readonly string[];
  /** Letter questions take the first character; word questions the whole cleaned answer. */
  kind: "letter" | "word";
  /** The prompt had demonstrations: cut at the first blank line. */
  shots: boolean;
  /** Chain of thought: the answer follows the last "answer is". */
  cot: boolean;
}

function foldDoubled(s: string): string {
  if (s.includes("yesyes")) return s.replace("yesyes", "yes");
  if (s.includes("nono")) return s.replace("nono", "no");
  if (s.includes("yesno")) return s.replace("yesno", "yes");
  if (s.includes("noyes")) return s.replace("noyes", "no");
  return s;
}

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/g;

/**
 * The index of the extracted answer in `labels`, or `null` when the output is unparseable.
 *
 * @example
 * ```ts
 * import { extractAnswer } from "./extract.ts";
 * const letters = ["A", "B", "C", "D"];
 * extractAnswer(" B. Ceftriaxone", { labels: letters, kind: "letter", shots: false, cot: false }); // 1
 * extractAnswer("So the answer is (C).", { labels: letters, kind: "letter", shots: false, cot: true }); // 2
 * extractAnswer(" maybe", { labels: ["yes", "no", "maybe"], kind: "word", shots: false, cot: false }); // 2
 * ```
 */
export function extractAnswer(output: string, options: ExtractOptions): number | null {
  let out = output.toLowerCase();
  if (out.includes("\n##")) out = out.split("\n##")[1].split("\n")[0].trim();
  if (options.shots) out = out.split("\n\n")[0].trim();
  out = out.replace(/[^a-zA-Z0-9]/g, " ").trim().replace(/ +/g, " ");
  if (options.cot) {
    const parts = out.split("answer is");
    const word = parts[parts.length - 1].split(" ").filter((w) => w !== "")[0];
    if (word === undefined) return null;
    out = word;
  }
  if (options.kind === "word") out = foldDoubled(out).replace(NON_ASCII, "");
  else out = out.replace(NON_ASCII, "").slice(0, 1);
  const i = options.labels.findIndex((l) => l.toLowerCase() === out);
  return i < 0 ? null : i;
}

/**
 * Majority vote over extracted answers (self-consistency). Unparseable samples (`null`) do not vote (in
 * Meditron each kept its distinct raw text, so they practically never won); ties go to the answer seen first,
 * as Python's `Counter.most_common`. All unparseable → `null`.
 *
 * @example
 * ```ts
 * import { majorityVote } from "./extract.ts";
 * majorityVote([1, 2, 2, null, null, null, 1, 2]); // 2
 * majorityVote([1, 2, 2, 1]); // 1
 * majorityVote([null, null]); // null
 * ```
 */
export function majorityVote(votes: readonly (number | null)[]): number | null {
  const counts = new Map<number, number>();
  for (const v of votes) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: number | null = null, bestCount = 0;
  for (const [v, c] of counts) {
    if (c > bestCount) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}
