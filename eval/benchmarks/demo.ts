/**
 * The demo benchmark: MedQA-format questions generated from the embedded knowledge base (`CONDITIONS` of
 * data/embedded/knowledge.ts). Four question types per condition (most likely diagnosis, initial test,
 * first-line treatment, complication), written as short clinical vignettes — a phrasing the pretraining corpus never uses —
 * with three distractors from the same organ system. A distractor whose text equals or overlaps the gold (or
 * another distractor) is dropped: several conditions share a test (e.g. hemoglobin electrophoresis), so a
 * naive generator would ask questions with two right answers. The conditions are split by a hash of their id:
 * one in five give the `train` questions (few-shot demonstrations only), the rest the `test` questions.
 *
 * USED WHEN NO `--data` IS GIVEN. A toolkit check, not a medical benchmark.
 *
 * @module
 */

import { type Condition, conditionsOfSystems } from "../../data/embedded/knowledge.ts";
import { mulberry32 } from "../../data/embedded/render.ts";
import type { MCQuestion } from "../question.ts";

/**
 * The four demo question types (the `meta` of each question).
 *
 * @example
 * ```ts
 * import { DEMO_QUESTION_TYPES } from "./demo.ts";
 * console.log(DEMO_QUESTION_TYPES[0]); // "diagnosis"
 * ```
 */
export const DEMO_QUESTION_TYPES = ["diagnosis", "test", "treatment", "complication"] as const;

/**
 * One demo question type.
 *
 * @example
 * ```ts
 * import type { DemoQuestionType } from "./demo.ts";
 * const t: DemoQuestionType = "treatment";
 * ```
 */
export type DemoQuestionType = typeof DEMO_QUESTION_TYPES[number];

/** Default seed of {@linkcode demoQuestions}. */
export const DEMO_SEED = 20240101;

const GENERIC = new Set([
  "a",
  "an",
  "the",
  "of",
  "and",
  "or",
  "with",
  "without",
  "for",
  "to",
  "in",
  "on",
  "by",
  "if",
  "as",
  "at",
  "then",
  "plus",
  "such",
  "after",
  "before",
  "followed",
  "showing",
  "serum",
  "level",
  "levels",
  "test",
  "testing",
  "therapy",
  "treatment",
  "all",
  "is",
  "when",
  "until",
  "once",
  "from",
  "its",
  "any",
]);

function contentWords(s: string): Set<string> {
  return new Set(
    s.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 1 && !GENERIC.has(w)),
  );
}

/**
 * Whether two answer texts are the same answer or overlap: equal after normalization, one contains the other,
 * or they share at least half of the shorter one's content words ("hemoglobin electrophoresis" and
 * "hemoglobin electrophoresis showing absent hemoglobin A" overlap; "serum ferritin" and "serum folate level"
 * do not).
 *
 * @example
 * ```ts
 * import { answersOverlap } from "./demo.ts";
 * answersOverlap("electrocardiogram", "12-lead electrocardiogram"); // true
 * answersOverlap("serum ferritin", "serum folate level"); // false
 * ```
 */
export function answersOverlap(a: string, b: string): boolean {
  const na = a.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  const nb = b.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  if (na === nb || na.includes(nb) || nb.includes(na)) return true;
  const wa = contentWords(a), wb = contentWords(b);
  const small = Math.min(wa.size, wb.size);
  if (small === 0) return false;
  let shared = 0;
  for (const w of wa) if (wb.has(w)) shared++;
  return shared / small >= 0.5;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Whether a condition's questions belong to the demo `train` split (few-shot demonstrations) rather than
 * `test`: one condition in five, by a hash of its id.
 *
 * @example
 * ```ts
 * import { isDemoTrainCondition } from "./demo.ts";
 * console.log(typeof isDemoTrainCondition("asthma")); // "boolean"
 * ```
 */
export function isDemoTrainCondition(id: string): boolean {
  return fnv1a(id) % 5 === 0;
}

function answerOf(c: Condition, type: DemoQuestionType): string {
  switch (type) {
    case "diagnosis":
      return c.name;
    case "test":
      return c.firstLineTest;
    case "treatment":
      return c.firstLineTreatment;
    case "complication":
      return c.complication;
  }
}

function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function patient(c: Condition, rand: () => number): string {
  if (c.system === "pediatric") return "A pediatric patient";
  if (c.system === "obstetric") return `A ${20 + Math.floor(rand() * 19)}-year-old woman`;
  return `A ${25 + Math.floor(rand() * 51)}-year-old patient`;
}

function stem(c: Condition, type: DemoQuestionType, rand: () => number): string {
  const who = patient(c, rand);
  const presents = `${who} comes to the clinic because of ${list(c.presentation)}.`;
  switch (type) {
    case "diagnosis":
      return `${presents} Evaluation shows ${
        list(c.keyFindings)
      }. Which of the following is the most likely diagnosis?`;
    case "test":
      return `${presents} The physician suspects ${c.name}. Which of the following is the most appropriate initial diagnostic test?`;
    case "treatment":
      return `${presents} Evaluation confirms ${c.name}. Which of the following is the most appropriate first-line treatment?`;
    case "complication":
      return `${presents} A diagnosis of ${c.name} is made. This patient is at greatest risk of which of the following complications?`;
  }
}

function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function distractors(
  c: Condition,
  type: DemoQuestionType,
  rand: () => number,
  pool: readonly Condition[],
): string[] | null {
  const gold = answerOf(c, type);
  const picked: string[] = [];
  const consider = (pool: readonly Condition[]) => {
    for (const o of shuffled(pool, rand)) {
      if (picked.length === 3) return;
      if (o.id === c.id) continue;
      const text = answerOf(o, type);
      if ([gold, ...picked].some((t) => answersOverlap(t, text))) continue;
      picked.push(text);
    }
  };
  consider(pool.filter((o) => o.system === c.system));
  if (picked.length < 3) consider(pool.filter((o) => o.system !== c.system));
  return picked.length === 3 ? picked : null;
}

/**
 * The demo split: `test` questions and `train` questions (demonstrations), both deterministic for a seed.
 *
 * @example
 * ```ts
 * import type { DemoSplit } from "./demo.ts";
 * const s: DemoSplit = { test: [], train: [] };
 * ```
 */
export interface DemoSplit {
  /** Questions about four conditions in five. */
  test: MCQuestion[];
  /** Questions about the other conditions, for few-shot demonstrations. */
  train: MCQuestion[];
}

/**
 * Generates the demo questions: four per condition, four options (A–D), gold position and distractors drawn
 * with a seeded PRNG; `subject` is the organ system, `meta` the question type. `systems` (`all`, the default,
 * or a comma-separated list of organ systems) limits both the questions and the distractors to those systems'
 * conditions, for a model pretrained on that part of the corpus (`pretrain --systems`, `data.systems`).
 *
 * @example
 * ```ts
 * import { demoQuestions } from "./demo.ts";
 * const { test, train } = demoQuestions();
 * console.log(test[0].question.endsWith("?"), test[0].options.length); // true 4
 * ```
 */
export function demoQuestions(seed: number = DEMO_SEED, systems = "all"): DemoSplit {
  const conditions = conditionsOfSystems(systems);
  const rand = mulberry32(seed);
  const split: DemoSplit = { test: [], train: [] };
  for (const c of conditions) {
    for (const type of DEMO_QUESTION_TYPES) {
      const question = stem(c, type, rand);
      const wrong = distractors(c, type, rand, conditions);
      if (wrong === null) continue;
      const answer = Math.floor(rand() * 4);
      const options = [...wrong];
      options.splice(answer, 0, answerOf(c, type));
      const q: MCQuestion = {
        id: `demo/${c.id}/${type}`,
        question,
        options,
        answer,
        kind: "letter",
        subject: c.system,
        meta: type,
        where: `demo#${c.id}/${type}`,
      };
      (isDemoTrainCondition(c.id) ? split.train : split.test).push(q);
    }
  }
  return split;
}
