/**
 * MedMCQA loader. The files are named `.json` but are JSON Lines of `{question, exp, cop, opa, opb, opc, opd,
 * subject_name, topic_name, id, choice_type}`. The raw release numbers the correct option `cop` from 1 (1–4);
 * the Hugging Face export numbers it from 0 and writes −1 on the unlabeled test split. The base is detected
 * per file and reported.
 *
 * @module
 */

import type { MCQuestion } from "../question.ts";
import { asRecord, BenchmarkFormatError, parseJsonLines, readBenchmarkFile, stringField } from "../errors.ts";

/**
 * How `cop` was numbered in a file: `1` (raw release, 1–4) or `0` (HF export, 0–3, −1 unlabeled).
 *
 * @example
 * ```ts
 * import type { CopBase } from "./medmcqa.ts";
 * const base: CopBase = 1;
 * ```
 */
export type CopBase = 0 | 1;

/**
 * Parsed MedMCQA file: labeled questions, the detected `cop` base, and how many unlabeled rows were skipped.
 *
 * @example
 * ```ts
 * import type { MedMCQAFile } from "./medmcqa.ts";
 * const f: MedMCQAFile = { questions: [], copBase: 1, unlabeled: 0, note: "cop is 1-based (raw release)" };
 * ```
 */
export interface MedMCQAFile {
  /** Labeled questions (4 options, letters A–D). */
  questions: MCQuestion[];
  /** Detected (or forced) numbering of `cop`. */
  copBase: CopBase;
  /** Rows with `cop` −1 or null (the HF test split), not returned. */
  unlabeled: number;
  /** One line saying which numbering was detected and why. */
  note: string;
}

const OPTION_KEYS = ["opa", "opb", "opc", "opd"] as const;

/**
 * Parses MedMCQA JSON Lines text. `copBase` is detected unless given: any `cop` of 0 or −1 means the 0-based HF
 * export, otherwise (all in 1–4) the 1-based raw release. Throws {@linkcode BenchmarkFormatError} naming
 * `file:line` on a malformed row or a `cop` out of range for the base.
 *
 * @example
 * ```ts
 * import { parseMedMCQA } from "./medmcqa.ts";
 * const row = { question: "Q?", exp: null, cop: 2, opa: "a", opb: "b", opc: "c", opd: "d",
 *   subject_name: "Anatomy", topic_name: null, id: "x1", choice_type: "single" };
 * const f = parseMedMCQA(JSON.stringify(row), "dev.json");
 * console.log(f.copBase, f.questions[0].answer); // 1 1
 * ```
 */
export function parseMedMCQA(text: string, file: string, copBase?: CopBase): MedMCQAFile {
  const rows = parseJsonLines(text, file).map(([line, v]) => {
    const where = `${file}:${line}`;
    return { where, o: asRecord(v, where) };
  });
  const cops = rows.map(({ o, where }) => {
    const cop = o.cop;
    if (cop === null || cop === undefined) return null;
    const n = typeof cop === "string" && /^-?\d+$/.test(cop.trim()) ? Number(cop) : cop;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw new BenchmarkFormatError(where, `"cop" ${JSON.stringify(cop)} is not an integer`);
    }
    return n;
  });
  let base: CopBase, note: string;
  if (copBase !== undefined) {
    base = copBase;
    note = `cop is ${base}-based (as requested)`;
  } else if (cops.some((c) => c === 0 || c === -1)) {
    base = 0;
    note = "cop is 0-based (Hugging Face export: 0–3, −1 unlabeled), detected from a cop of 0 or −1";
  } else {
    base = 1;
    note = "cop is 1-based (raw MedMCQA release: 1–4), detected: no cop of 0 or −1 in the file";
  }
  const questions: MCQuestion[] = [];
  let unlabeled = 0;
  rows.forEach(({ o, where }, i) => {
    const cop = cops[i];
    if (cop === null || (base === 0 && cop === -1)) {
      unlabeled++;
      return;
    }
    const answer = cop - base;
    if (answer < 0 || answer > 3) {
      throw new BenchmarkFormatError(where, `"cop" ${cop} is out of range for ${base}-based numbering`);
    }
    const options = OPTION_KEYS.map((k) => stringField(o, k, where));
    const subject = typeof o.subject_name === "string" ? o.subject_name : undefined;
    const id = typeof o.id === "string" ? o.id : `${i + 1}`;
    questions.push({
      id: `medmcqa/${id}`,
      question: stringField(o, "question", where),
      options,
      answer,
      kind: "letter",
      subject,
      where,
    });
  });
  return { questions, copBase: base, unlabeled, note };
}

/**
 * Reads and parses a MedMCQA `.json` (JSON Lines) file; see {@linkcode parseMedMCQA}.
 *
 * @example
 * ```ts
 * import { loadMedMCQA } from "./medmcqa.ts";
 * const dev = await loadMedMCQA("data/medmcqa/dev.json");
 * console.log(dev.note);
 * ```
 */
export async function loadMedMCQA(path: string, copBase?: CopBase): Promise<MedMCQAFile> {
  return parseMedMCQA(await readBenchmarkFile(path), path, copBase);
}
