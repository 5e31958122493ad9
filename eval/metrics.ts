/**
 * Evaluation metrics: accuracy, accuracy over parseable answers, unparseable count, per-subject and
 * per-meta_info accuracy, macro-F1 (PubMedQA), a seeded 95% bootstrap confidence interval, and mean ± std over
 * few-shot seeds.
 *
 * @module
 */

import { mulberry32 } from "../data/embedded/render.ts";

/**
 * One graded answer: gold and predicted option index (`null` = unparseable).
 *
 * @example
 * ```ts
 * import type { GradedAnswer } from "./metrics.ts";
 * const g: GradedAnswer = { gold: 2, pred: null, subject: "Anatomy" };
 * ```
 */
export interface GradedAnswer {
  /** Gold option index. */
  gold: number;
  /** Predicted option index, `null` when the output could not be parsed. */
  pred: number | null;
  /** Subject (per-subject accuracy). */
  subject?: string;
  /** MedQA meta_info or demo question type (per-meta accuracy). */
  meta?: string;
}

/**
 * Accuracy of a group of answers.
 *
 * @example
 * ```ts
 * import type { GroupAccuracy } from "./metrics.ts";
 * const g: GroupAccuracy = { n: 4, correct: 3, accuracy: 0.75 };
 * ```
 */
export interface GroupAccuracy {
  /** Number of questions. */
  n: number;
  /** Number answered correctly. */
  correct: number;
  /** correct / n. */
  accuracy: number;
}

/**
 * All metrics of one evaluation pass.
 *
 * @example
 * ```ts
 * import { computeMetrics, type Metrics } from "./metrics.ts";
 * const m: Metrics = computeMetrics([{ gold: 0, pred: 0 }]);
 * ```
 */
export interface Metrics {
  /** Number of questions. */
  n: number;
  /** Correct answers. */
  correct: number;
  /** correct / n (unparseable answers count as wrong). */
  accuracy: number;
  /** Answers that could be parsed. */
  parseable: number;
  /** Answers that could not be parsed. */
  unparseable: number;
  /** correct / parseable (Meditron's "calibrated" accuracy); 0 when nothing parsed. */
  accuracyParseable: number;
  /** 95% percentile-bootstrap interval of the accuracy. */
  ci95: [number, number];
  /** Accuracy per subject (only questions that have one). */
  bySubject: Record<string, GroupAccuracy>;
  /** Accuracy per meta_info / question type (only questions that have one). */
  byMeta: Record<string, GroupAccuracy>;
  /** Macro-F1 over the answer classes, when requested (PubMedQA). */
  macroF1?: number;
}

/**
 * Options of {@linkcode computeMetrics}.
 *
 * @example
 * ```ts
 * import type { MetricOptions } from "./metrics.ts";
 * const o: MetricOptions = { classes: 3, bootstrapSamples: 1000, seed: 1 };
 * ```
 */
export interface MetricOptions {
  /** Compute macro-F1 over this many answer classes (PubMedQA: 3). */
  classes?: number;
  /** Bootstrap resamples (default 1000). */
  bootstrapSamples?: number;
  /** Bootstrap seed (default 1234). */
  seed?: number;
}

function groupBy(items: readonly GradedAnswer[], key: (g: GradedAnswer) => string | undefined) {
  const out: Record<string, GroupAccuracy> = {};
  for (const g of items) {
    const k = key(g);
    if (k === undefined) continue;
    const e = out[k] ??= { n: 0, correct: 0, accuracy: 0 };
    e.n++;
    if (g.pred === g.gold) e.correct++;
  }
  for (const e of Object.values(out)) e.accuracy = e.correct / e.n;
  return out;
}

/**
 * 95% percentile-bootstrap interval of the mean of `correct` (1 = right), resampled with a seeded PRNG: the
 * same seed gives the same interval.
 *
 * @example
 * ```ts
 * import { bootstrapCI } from "./metrics.ts";
 * const [lo, hi] = bootstrapCI([true, false, true, true], 1000, 7);
 * console.log(lo <= 0.75 && 0.75 <= hi); // true
 * ```
 */
export function bootstrapCI(correct: readonly boolean[], samples = 1000, seed = 1234): [number, number] {
  const n = correct.length;
  if (n === 0) return [0, 0];
  const rand = mulberry32(seed);
  const means = new Float64Array(samples);
  for (let b = 0; b < samples; b++) {
    let hits = 0;
    for (let i = 0; i < n; i++) if (correct[Math.floor(rand() * n)]) hits++;
    means[b] = hits / n;
  }
  means.sort();
  const lo = means[Math.floor(0.025 * samples)];
  const hi = means[Math.min(samples - 1, Math.ceil(0.975 * samples) - 1)];
  return [lo, hi];
}

/**
 * Macro-F1 over the classes `0..classes-1` that occur as a gold or a prediction (scikit-learn's
 * `average="macro"` on the labels present); an unparseable prediction is a miss for its gold class.
 *
 * @example
 * ```ts
 * import { macroF1 } from "./metrics.ts";
 * macroF1([{ gold: 0, pred: 0 }, { gold: 1, pred: 0 }, { gold: 2, pred: 2 }], 3); // (2/3 + 0 + 1) / 3
 * ```
 */
export function macroF1(items: readonly GradedAnswer[], classes: number): number {
  let sum = 0, present = 0;
  for (let c = 0; c < classes; c++) {
    let tp = 0, fp = 0, fn = 0;
    for (const { gold, pred } of items) {
      if (pred === c && gold === c) tp++;
      else if (pred === c) fp++;
      else if (gold === c) fn++;
    }
    if (tp + fp + fn === 0) continue;
    present++;
    sum += (2 * tp) / (2 * tp + fp + fn);
  }
  return present === 0 ? 0 : sum / present;
}

/**
 * Every metric of one pass over a benchmark.
 *
 * @example
 * ```ts
 * import { computeMetrics } from "./metrics.ts";
 * const m = computeMetrics([{ gold: 0, pred: 0 }, { gold: 1, pred: null }, { gold: 1, pred: 0 }]);
 * console.log(m.accuracy, m.accuracyParseable, m.unparseable); // 0.333… 0.5 1
 * ```
 */
export function computeMetrics(items: readonly GradedAnswer[], options: MetricOptions = {}): Metrics {
  const n = items.length;
  const correct = items.filter((g) => g.pred === g.gold).length;
  const parseable = items.filter((g) => g.pred !== null).length;
  const m: Metrics = {
    n,
    correct,
    accuracy: n === 0 ? 0 : correct / n,
    parseable,
    unparseable: n - parseable,
    accuracyParseable: parseable === 0 ? 0 : correct / parseable,
    ci95: bootstrapCI(
      items.map((g) => g.pred === g.gold),
      options.bootstrapSamples ?? 1000,
      options.seed ?? 1234,
    ),
    bySubject: groupBy(items, (g) => g.subject),
    byMeta: groupBy(items, (g) => g.meta),
  };
  if (options.classes !== undefined) m.macroF1 = macroF1(items, options.classes);
  return m;
}

/**
 * Mean and sample standard deviation (n − 1; 0 for a single value).
 *
 * @example
 * ```ts
 * import { meanStd } from "./metrics.ts";
 * meanStd([0.5, 0.7]); // { mean: 0.6, std: 0.1414… }
 * ```
 */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: 0, std: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length === 1) return { mean, std: 0 };
  const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1);
  return { mean, std: Math.sqrt(v) };
}
