/**
 * MMLU-medical loader: headerless CSVs `question,A,B,C,D,answer-letter`, one `{subject}_test.csv` per subject
 * (few-shot demonstrations from `{subject}_dev.csv`), in a directory laid out as the original release
 * (`test/`, `dev/`) or flat.
 *
 * @module
 */

import { join } from "node:path";
import type { MCQuestion } from "../question.ts";
import { BenchmarkFormatError, readBenchmarkFile } from "../errors.ts";
import { parseCsv } from "../csv.ts";

/**
 * Meditron's nine MMLU-medical subjects.
 *
 * @example
 * ```ts
 * import { MMLU_MEDICAL_SUBJECTS } from "./mmlu.ts";
 * console.log(MMLU_MEDICAL_SUBJECTS.length); // 9
 * ```
 */
export const MMLU_MEDICAL_SUBJECTS: readonly string[] = [
  "anatomy",
  "clinical_knowledge",
  "college_biology",
  "college_medicine",
  "medical_genetics",
  "professional_medicine",
  "virology",
  "high_school_biology",
  "nutrition",
];

/**
 * Parses one MMLU CSV file of `subject`. Throws {@linkcode BenchmarkFormatError} naming `file:line` for a row
 * without 6 fields or with an answer other than A–D.
 *
 * @example
 * ```ts
 * import { parseMmlu } from "./mmlu.ts";
 * const qs = parseMmlu('"Which bone, if any, is longest?",Femur,Tibia,Ulna,Radius,A\n', "anatomy_test.csv", "anatomy");
 * console.log(qs[0].options[0], qs[0].answer); // Femur 0
 * ```
 */
export function parseMmlu(text: string, file: string, subject: string): MCQuestion[] {
  return parseCsv(text, file).map(({ line, fields }) =>
    mmluQuestion(fields, `${file}:${line}`, subject, line)
  );
}

/**
 * One MMLU question from `[question, A, B, C, D, answer-letter]` (a CSV row, or a Hugging Face row's fields);
 * `n` numbers it within its subject. Throws {@linkcode BenchmarkFormatError} naming `where`.
 *
 * @example
 * ```ts
 * import { mmluQuestion } from "./mmlu.ts";
 * const q = mmluQuestion(["Longest bone?", "Femur", "Tibia", "Ulna", "Radius", "A"], "x.csv:1", "anatomy", 1);
 * console.log(q.id, q.answer); // mmlu/anatomy/1 0
 * ```
 */
export function mmluQuestion(fields: string[], where: string, subject: string, n: number): MCQuestion {
  if (fields.length !== 6) {
    throw new BenchmarkFormatError(
      where,
      `expected 6 fields (question,A,B,C,D,answer), got ${fields.length}`,
    );
  }
  const letter = fields[5].trim();
  const answer = ["A", "B", "C", "D"].indexOf(letter);
  if (answer < 0) throw new BenchmarkFormatError(where, `answer ${JSON.stringify(fields[5])} is not A–D`);
  return {
    id: `mmlu/${subject}/${n}`,
    question: fields[0],
    options: fields.slice(1, 5),
    answer,
    kind: "letter",
    subject,
    where,
  };
}

async function firstExisting(paths: string[]): Promise<string> {
  for (const p of paths) {
    try {
      await Deno.stat(p);
      return p;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new BenchmarkFormatError(paths[0], `file not found (also looked for ${paths.slice(1).join(", ")})`);
}

/**
 * Loads `split` ("test" or "dev") of the given subjects from an MMLU data directory (`dir/test/x_test.csv`
 * or `dir/x_test.csv`).
 *
 * @example
 * ```ts
 * import { loadMmlu, MMLU_MEDICAL_SUBJECTS } from "./mmlu.ts";
 * const test = await loadMmlu("data/mmlu", "test", MMLU_MEDICAL_SUBJECTS);
 * ```
 */
export async function loadMmlu(
  dir: string,
  split: "test" | "dev",
  subjects: readonly string[] = MMLU_MEDICAL_SUBJECTS,
): Promise<MCQuestion[]> {
  const out: MCQuestion[] = [];
  for (const subject of subjects) {
    const name = `${subject}_${split}.csv`;
    const path = await firstExisting([join(dir, split, name), join(dir, name)]);
    out.push(...parseMmlu(await readBenchmarkFile(path), path, subject));
  }
  return out;
}
