/**
 * MedQA (USMLE) loader: the jind11 JSON Lines release (5-option `test.jsonl`, 4-option
 * `4_options/phrases_no_exclude_test.jsonl` with `metamap_phrases`) and the Hugging Face
 * `GBaker/MedQA-USMLE-4-options-hf` shape (`sent1`, `ending0..3`, `label`).
 *
 * Stray trailing `"` and whitespace in the real files are tolerated without rewriting anything shown to the
 * model: the gold is always `answer_idx`, whose key is trimmed before lookup.
 *
 * @module
 */

import type { MCQuestion } from "../question.ts";
import { asRecord, BenchmarkFormatError, parseJsonLines, readBenchmarkFile, stringField } from "../errors.ts";

/** Trims whitespace and stray quotes around an option key such as `"B\" "`. */
function cleanKey(key: string): string {
  return key.trim().replace(/^"+|"+$/g, "").trim();
}

function parseJind11(o: Record<string, unknown>, where: string, n: number): MCQuestion {
  const question = stringField(o, "question", where);
  const opts = asRecord(o.options, `${where} (field "options")`);
  const keys = Object.keys(opts).sort((a, b) => cleanKey(a).localeCompare(cleanKey(b)));
  if (keys.length < 2) throw new BenchmarkFormatError(where, `"options" has ${keys.length} entries`);
  const options: string[] = [];
  keys.forEach((k, i) => {
    const label = String.fromCharCode(65 + i);
    if (cleanKey(k) !== label) {
      throw new BenchmarkFormatError(where, `option keys must be A, B, …; got ${JSON.stringify(k)}`);
    }
    const text = opts[k];
    if (typeof text !== "string") throw new BenchmarkFormatError(where, `option ${label} is not a string`);
    options.push(text);
  });
  const idx = cleanKey(stringField(o, "answer_idx", where));
  const answer = idx.length === 1 ? idx.charCodeAt(0) - 65 : -1;
  if (answer < 0 || answer >= options.length) {
    throw new BenchmarkFormatError(where, `answer_idx ${JSON.stringify(o.answer_idx)} names no option`);
  }
  const meta = typeof o.meta_info === "string" ? o.meta_info.trim() : undefined;
  return { id: `medqa/${n}`, question, options, answer, kind: "letter", meta, where };
}

function parseGBaker(o: Record<string, unknown>, where: string, n: number): MCQuestion {
  const question = stringField(o, "sent1", where);
  const options: string[] = [];
  for (let i = 0; `ending${i}` in o; i++) options.push(stringField(o, `ending${i}`, where));
  if (options.length < 2) throw new BenchmarkFormatError(where, `needs ending0, ending1, …`);
  const label = o.label;
  if (typeof label !== "number" || !Number.isInteger(label) || label < 0 || label >= options.length) {
    throw new BenchmarkFormatError(where, `"label" ${JSON.stringify(label)} is not an option index`);
  }
  const id = typeof o.id === "string" || typeof o.id === "number" ? `medqa/${o.id}` : `medqa/${n}`;
  return { id, question, options, answer: label, kind: "letter", where };
}

/**
 * Parses MedQA JSON Lines text (either shape, detected per line). Throws {@linkcode BenchmarkFormatError}
 * naming `file:line` on a malformed line.
 *
 * @example
 * ```ts
 * import { parseMedQA } from "./medqa.ts";
 * const line = JSON.stringify({
 *   question: "Which vitamin deficiency causes scurvy?", answer: "Vitamin C",
 *   options: { A: "Vitamin A", B: "Vitamin C" }, meta_info: "step1", answer_idx: "B",
 * });
 * parseMedQA(line, "test.jsonl")[0].answer; // 1
 * ```
 */
export function parseMedQA(text: string, file: string): MCQuestion[] {
  return parseJsonLines(text, file).map(([line, value], i) => {
    const where = `${file}:${line}`;
    const o = asRecord(value, where);
    if ("sent1" in o) return parseGBaker(o, where, i + 1);
    if ("options" in o) return parseJind11(o, where, i + 1);
    throw new BenchmarkFormatError(where, `neither the jind11 shape ("options") nor the HF one ("sent1")`);
  });
}

/**
 * Reads and parses a MedQA `.jsonl` file.
 *
 * @example
 * ```ts
 * import { loadMedQA } from "./medqa.ts";
 * const test = await loadMedQA("data/medqa/4_options/phrases_no_exclude_test.jsonl");
 * ```
 */
export async function loadMedQA(path: string): Promise<MCQuestion[]> {
  return parseMedQA(await readBenchmarkFile(path), path);
}
