/**
 * k-shot demonstrations: k questions of the train split, shuffled with the seed, the same for every test
 * question (per subject when the benchmark draws demonstrations from the question's own subject, as MMLU).
 *
 * @module
 */

import { mulberry32 } from "../data/embedded/render.ts";
import type { MCQuestion } from "./question.ts";

/**
 * Meditron's few-shot seeds; results are reported as mean ± std over them.
 *
 * @example
 * ```ts
 * import { FEWSHOT_SEEDS } from "./fewshot.ts";
 * console.log(FEWSHOT_SEEDS); // [1234, 432, 32]
 * ```
 */
export const FEWSHOT_SEEDS: readonly number[] = [1234, 432, 32];

/**
 * The first k questions of `train` after a Fisher–Yates shuffle seeded with `seed` (same seed, same demos).
 * Throws when the train split has fewer than k questions.
 *
 * @example
 * ```ts
 * import { selectDemos } from "./fewshot.ts";
 * const train = [0, 1, 2, 3, 4].map((i) => ({ id: `${i}`, question: "q", options: ["a", "b"], answer: 0,
 *   kind: "letter" as const, where: `t:${i}` }));
 * selectDemos(train, 2, 1234).length; // 2
 * ```
 */
export function selectDemos(train: readonly MCQuestion[], k: number, seed: number): MCQuestion[] {
  if (k === 0) return [];
  if (train.length < k) {
    throw new Error(`${k}-shot needs ${k} demonstrations but the train split has ${train.length}`);
  }
  const rand = mulberry32(seed);
  const a = [...train];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

/**
 * Demonstrations for each test question: one draw for the whole benchmark, or one per subject when
 * `bySubject` (questions without a subject, or a subject absent from train, use the whole train split).
 *
 * @example
 * ```ts
 * import { DemoPicker } from "./fewshot.ts";
 * const picker = new DemoPicker([], 0, 1234, false);
 * picker.demosFor({ id: "1", question: "q", options: ["a"], answer: 0, kind: "letter", where: "f:1" }); // []
 * ```
 */
export class DemoPicker {
  readonly #cache = new Map<string, MCQuestion[]>();

  /** Picks `k` demonstrations of `train` with `seed`. */
  constructor(
    private readonly train: readonly MCQuestion[],
    private readonly k: number,
    private readonly seed: number,
    private readonly bySubject: boolean,
  ) {}

  /** The demonstrations placed before question `q`. */
  demosFor(q: MCQuestion): MCQuestion[] {
    const subject =
      this.bySubject && q.subject !== undefined && this.train.some((t) => t.subject === q.subject)
        ? q.subject
        : "";
    let demos = this.#cache.get(subject);
    if (demos === undefined) {
      const pool = subject === "" ? this.train : this.train.filter((t) => t.subject === subject);
      demos = selectDemos(pool, this.k, this.seed);
      this.#cache.set(subject, demos);
    }
    return demos;
  }
}
