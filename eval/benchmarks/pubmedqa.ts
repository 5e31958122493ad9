/**
 * PubMedQA (PQA-L, reasoning-required) loader: `ori_pqal.json` is one JSON object keyed by PMID; the test split
 * is the key set of `test_ground_truth.json` (`{PMID: label}`) or of `test_set.json`. The question shown is the
 * contexts joined by "\n", then the question; `LONG_ANSWER` is never shown.
 *
 * @module
 */

import type { MCQuestion } from "../question.ts";
import { asRecord, BenchmarkFormatError, readBenchmarkFile, stringField } from "../errors.ts";

/**
 * The PubMedQA answer words, in option order.
 *
 * @example
 * ```ts
 * import { PUBMEDQA_LABELS } from "./pubmedqa.ts";
 * console.log(PUBMEDQA_LABELS.join("/")); // yes/no/maybe
 * ```
 */
export const PUBMEDQA_LABELS: readonly string[] = ["yes", "no", "maybe"];

function parseJson(text: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new BenchmarkFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  return asRecord(v, file);
}

/**
 * Builds a PubMedQA question from one `ori_pqal.json` entry; throws naming `where` (`file#PMID`).
 *
 * @example
 * ```ts
 * import { pubmedqaQuestion } from "./pubmedqa.ts";
 * const q = pubmedqaQuestion("1", { QUESTION: "Does X help?", CONTEXTS: ["c1", "c2"], final_decision: "maybe",
 *   LONG_ANSWER: "hidden" }, "ori_pqal.json#1");
 * console.log(q.question); // "c1\nc2\nDoes X help?"
 * ```
 */
export function pubmedqaQuestion(pmid: string, entry: unknown, where: string): MCQuestion {
  const o = asRecord(entry, where);
  const contexts = o.CONTEXTS;
  if (!Array.isArray(contexts) || contexts.some((c) => typeof c !== "string")) {
    throw new BenchmarkFormatError(where, `"CONTEXTS" must be a list of strings`);
  }
  const decision = stringField(o, "final_decision", where).trim().toLowerCase();
  const answer = PUBMEDQA_LABELS.indexOf(decision);
  if (answer < 0) throw new BenchmarkFormatError(where, `"final_decision" ${JSON.stringify(decision)}`);
  const context = contexts.join("\n");
  const question = `${context}\n${stringField(o, "QUESTION", where)}`;
  return {
    id: `pubmedqa/${pmid}`,
    question,
    options: [...PUBMEDQA_LABELS],
    answer,
    kind: "word",
    where,
    context,
  };
}

/**
 * The split of PubMedQA PQA-L given the test keys: `test` and `train` (the rest, for few-shot demonstrations),
 * each in ascending PMID order (JSON objects keyed by integers iterate that way in JavaScript).
 *
 * @example
 * ```ts
 * import type { PubMedQASplit } from "./pubmedqa.ts";
 * const s: PubMedQASplit = { test: [], train: [] };
 * ```
 */
export interface PubMedQASplit {
  /** Questions whose PMID is a key of the test file. */
  test: MCQuestion[];
  /** Every other labeled question of `ori_pqal.json`. */
  train: MCQuestion[];
}

/**
 * Parses `ori_pqal.json` and a test-key file (`test_ground_truth.json` or `test_set.json`). Every test PMID must
 * be in `ori_pqal.json`; a ground-truth label that disagrees with `final_decision` is an error.
 *
 * @example
 * ```ts
 * import { parsePubMedQA } from "./pubmedqa.ts";
 * const ori = JSON.stringify({ "1": { QUESTION: "Q?", CONTEXTS: ["c"], final_decision: "no" },
 *   "2": { QUESTION: "R?", CONTEXTS: ["d"], final_decision: "yes" } });
 * const split = parsePubMedQA(ori, "ori_pqal.json", JSON.stringify({ "2": "yes" }), "test_ground_truth.json");
 * console.log(split.test.length, split.train.length); // 1 1
 * ```
 */
export function parsePubMedQA(
  oriText: string,
  oriFile: string,
  testText: string,
  testFile: string,
): PubMedQASplit {
  const ori = parseJson(oriText, oriFile);
  const testKeys = parseJson(testText, testFile);
  const test: MCQuestion[] = [];
  for (const [pmid, label] of Object.entries(testKeys)) {
    if (!(pmid in ori)) throw new BenchmarkFormatError(`${testFile}#${pmid}`, `PMID not in ${oriFile}`);
    const q = pubmedqaQuestion(pmid, ori[pmid], `${oriFile}#${pmid}`);
    if (typeof label === "string" && label.trim().toLowerCase() !== PUBMEDQA_LABELS[q.answer]) {
      throw new BenchmarkFormatError(
        `${testFile}#${pmid}`,
        `label ${JSON.stringify(label)} disagrees with final_decision "${PUBMEDQA_LABELS[q.answer]}"`,
      );
    }
    test.push(q);
  }
  const train = Object.entries(ori)
    .filter(([pmid]) => !(pmid in testKeys))
    .map(([pmid, v]) => pubmedqaQuestion(pmid, v, `${oriFile}#${pmid}`));
  return { test, train };
}

/**
 * Reads `ori_pqal.json` and the test-key file; see {@linkcode parsePubMedQA}.
 *
 * @example
 * ```ts
 * import { loadPubMedQA } from "./pubmedqa.ts";
 * const { test } = await loadPubMedQA("data/pubmedqa/ori_pqal.json", "data/pubmedqa/test_ground_truth.json");
 * ```
 */
export async function loadPubMedQA(oriPath: string, testPath: string): Promise<PubMedQASplit> {
  return parsePubMedQA(
    await readBenchmarkFile(oriPath),
    oriPath,
    await readBenchmarkFile(testPath),
    testPath,
  );
}
