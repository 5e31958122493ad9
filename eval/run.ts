/**
 * Runs a benchmark on a language model with Meditron's protocol: modes `loglik` (score each option letter or
 * yes/no/maybe, pick the most likely), `greedy` (short generation, Meditron's extraction), `cot` (≤ 1024
 * tokens, answer after the last "answer is"), `sc-cot` (sampled chains of thought, majority vote); k-shot over
 * seeds (mean ± std); Meditron's or the harness's prompts; the chat wrapper.
 *
 * @module
 */

import type { LanguageModel } from "../models/lm.ts";
import { answerLabels, type MCQuestion } from "./question.ts";
import {
  buildPrompt,
  continuationText,
  goldLabel,
  PROMPT_FORMATS,
  type PromptFormat,
  scoringContext,
  systemText,
} from "./prompts.ts";
import { extractAnswer, majorityVote } from "./extract.ts";
import { computeMetrics, type GradedAnswer, meanStd, type Metrics } from "./metrics.ts";
import { DemoPicker, FEWSHOT_SEEDS } from "./fewshot.ts";
import type { Benchmark } from "./benchmarks/mod.ts";
import { type TextCodec, tokenizeScoring } from "./scoring.ts";

/**
 * How answers are obtained from the model.
 *
 * @example
 * ```ts
 * import type { EvalMode } from "./run.ts";
 * const m: EvalMode = "sc-cot";
 * ```
 */
export type EvalMode = "loglik" | "cloze" | "greedy" | "cot" | "sc-cot";

/**
 * The evaluation modes, default first.
 *
 * @example
 * ```ts
 * import { EVAL_MODES } from "./run.ts";
 * console.log(EVAL_MODES[0]); // "loglik"
 * ```
 */
export const EVAL_MODES: readonly EvalMode[] = ["loglik", "cloze", "greedy", "cot", "sc-cot"];

/**
 * Throws when a mode and a prompt format cannot go together: an unknown mode or format, or the continuation
 * format (which lists no options) with any mode but `cloze`.
 *
 * @example
 * ```ts
 * import { checkModeFormat } from "./run.ts";
 * checkModeFormat("cloze", "continuation"); // fine
 * try { checkModeFormat("loglik", "continuation"); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function checkModeFormat(mode: EvalMode, format: PromptFormat): void {
  if (!EVAL_MODES.includes(mode)) throw new Error(`unknown mode "${mode}" (known: ${EVAL_MODES.join(", ")})`);
  if (!PROMPT_FORMATS.includes(format)) {
    throw new Error(`unknown format "${format}" (known: ${PROMPT_FORMATS.join(", ")})`);
  }
  if (format === "continuation" && mode !== "cloze") {
    throw new Error(`the continuation format lists no options: use it with mode "cloze", not "${mode}"`);
  }
}

/**
 * Options of {@linkcode evaluate}.
 *
 * @example
 * ```ts
 * import type { EvalOptions } from "./run.ts";
 * const o: EvalOptions = { mode: "loglik", shots: 3, seeds: [1234, 432, 32], limit: 100 };
 * ```
 */
export interface EvalOptions {
  /** Default `"loglik"`. */
  mode?: EvalMode;
  /** Demonstrations per prompt (default 0). */
  shots?: number;
  /** Few-shot seeds (default 1234, 432, 32; a 0-shot run uses no seed and runs once). */
  seeds?: readonly number[];
  /** Wrap prompts in Meditron's chat template. */
  chat?: boolean;
  /** Prompt family (default `"meditron"`). */
  format?: PromptFormat;
  /** Evaluate only the first N test questions. */
  limit?: number;
  /** sc-cot: samples per question (default 5). */
  samples?: number;
  /** sc-cot sampling temperature (default 0.8). */
  temperature?: number;
  /** Generated tokens per answer (default: greedy 8, 16 with shots; cot 1024). */
  maxTokens?: number;
  /** Frequency penalty for generation (default 1.0, as Meditron's vLLM settings). */
  frequencyPenalty?: number;
  /** Seed of the bootstrap CI (default 1234). */
  bootstrapSeed?: number;
  /**
   * The model's context length: longer prompts lose their oldest tokens (counted in
   * {@linkcode EvalResult.truncated}); generation is capped at half of it.
   */
  maxContext?: number;
  /**
   * Called after each answer: `done` of `total` answers, which is `questions` × the number of few-shot seeds
   * (every question is answered once per seed).
   */
  onProgress?: (done: number, total: number, questions: number) => void;
}

/**
 * One line of the generations JSONL.
 *
 * @example
 * ```ts
 * import type { GenerationRecord } from "./run.ts";
 * const r: GenerationRecord = { id: "medqa/1", seed: null, prompt: "…", outputs: [" B"], pred: "B", gold: "B",
 *   correct: true };
 * ```
 */
export interface GenerationRecord {
  /** Question id. */
  id: string;
  /** Few-shot seed, `null` for 0-shot. */
  seed: number | null;
  /** Prompt text given to the model. */
  prompt: string;
  /** Generated texts (one; sc-cot: one per sample; loglik: none). */
  outputs: string[];
  /** loglik: Σ log p of each answer label's continuation. */
  logprobs?: number[];
  /** Predicted label, `null` when unparseable. */
  pred: string | null;
  /** Gold label. */
  gold: string;
  /** pred === gold. */
  correct: boolean;
  /** Subject, when the question has one. */
  subject?: string;
  /** meta_info / question type, when the question has one. */
  meta?: string;
}

/**
 * Metrics of one few-shot seed (`seed` null for 0-shot).
 *
 * @example
 * ```ts
 * import type { SeedResult } from "./run.ts";
 * import { computeMetrics } from "./metrics.ts";
 * const s: SeedResult = { seed: 1234, metrics: computeMetrics([]) };
 * ```
 */
export interface SeedResult {
  /** Few-shot seed. */
  seed: number | null;
  /** Metrics of the pass with that seed. */
  metrics: Metrics;
}

/**
 * The result of {@linkcode evaluate}.
 *
 * @example
 * ```ts
 * import type { EvalResult } from "./run.ts";
 * function show(r: EvalResult) {
 *   console.log(`${r.benchmark}: ${(100 * r.accuracy.mean).toFixed(1)} ± ${(100 * r.accuracy.std).toFixed(1)}`);
 * }
 * ```
 */
export interface EvalResult {
  /** Benchmark name. */
  benchmark: string;
  /** Mode used. */
  mode: EvalMode;
  /** Demonstrations per prompt. */
  shots: number;
  /** Prompt family. */
  format: PromptFormat;
  /** Chat wrapper used. */
  chat: boolean;
  /** Questions evaluated per seed. */
  questions: number;
  /** Metrics per seed. */
  perSeed: SeedResult[];
  /** Accuracy mean ± sample std over seeds. */
  accuracy: { mean: number; std: number };
  /** Notes of the loader (files, detections). */
  notes: string[];
  /** Prompts that lost their oldest tokens to fit `maxContext`. */
  truncated: number;
  /** Every prompt and answer. */
  records: GenerationRecord[];
}

const STOP = ["###", "$$$"];

interface Resolved {
  mode: EvalMode;
  shots: number;
  chat: boolean;
  samples: number;
  temperature: number;
  frequencyPenalty: number;
  maxTokens?: number;
  maxContext: number;
}

async function generateText(
  model: LanguageModel,
  codec: TextCodec,
  prompt: string,
  o: Resolved,
  budget: { maxTokens: number; temperature: number; seed: number },
  onTruncate: () => void,
): Promise<string> {
  const ids: number[] = [];
  const decode = (t: number[]) => codec.decode(t);
  const maxTokens = Math.min(budget.maxTokens, Math.floor(o.maxContext / 2));
  let promptIds = codec.encode(prompt, { addBos: true, addEos: false });
  if (promptIds.length > o.maxContext - maxTokens) {
    promptIds = promptIds.slice(promptIds.length - (o.maxContext - maxTokens));
    onTruncate();
  }
  const { temperature, seed } = budget, frequencyPenalty = o.frequencyPenalty;
  for await (
    const id of model.generate(promptIds, {
      maxTokens,
      temperature,
      frequencyPenalty,
      seed,
      stop: STOP,
      eos: codec.eosId === null ? [] : [codec.eosId],
      decode,
    })
  ) ids.push(id);
  let text = codec.decode(ids);
  for (const s of STOP) {
    const at = text.indexOf(s);
    if (at >= 0) text = text.slice(0, at);
  }
  return text;
}

interface Answer {
  pred: number | null;
  outputs: string[];
  logprobs?: number[];
  truncated: boolean;
}

async function answerOne(
  q: MCQuestion,
  prompt: string,
  model: LanguageModel,
  codec: TextCodec,
  o: Resolved,
  sampleSeed: number,
): Promise<Answer> {
  const labels = answerLabels(q);
  let truncated = false;
  const onTruncate = () => truncated = true;
  if (o.mode === "loglik" || o.mode === "cloze") {
    // loglik scores the answer labels (" A", " yes"); cloze scores each option's text (lm-evaluation-harness
    // "acc"), which needs no familiarity with the answer format: the choice for pretrained-only models.
    const context = scoringContext(prompt, o.chat);
    const candidates = o.mode === "cloze" && q.kind === "letter" ? q.options : labels;
    const tok = tokenizeScoring(
      codec,
      context,
      candidates.map((l) => continuationText(context, l)),
      o.maxContext,
    );
    const scores = await model.score(tok.context, tok.continuations);
    const logprobs = scores.map((s) => s.logprob);
    let best = 0;
    for (let i = 1; i < logprobs.length; i++) if (logprobs[i] > logprobs[best]) best = i;
    return { pred: best, outputs: [], logprobs, truncated: tok.truncated };
  }
  const cot = o.mode !== "greedy";
  const maxTokens = o.maxTokens ?? (cot ? 1024 : o.shots > 0 ? 16 : 8);
  const extract = { labels, kind: q.kind, shots: o.shots > 0, cot };
  if (o.mode === "sc-cot") {
    const outputs: string[] = [];
    for (let s = 0; s < o.samples; s++) {
      const budget = { maxTokens, temperature: o.temperature, seed: sampleSeed + s };
      outputs.push(await generateText(model, codec, prompt, o, budget, onTruncate));
    }
    return { pred: majorityVote(outputs.map((t) => extractAnswer(t, extract))), outputs, truncated };
  }
  const budget = { maxTokens, temperature: 0, seed: sampleSeed };
  const text = await generateText(model, codec, prompt, o, budget, onTruncate);
  return { pred: extractAnswer(text, extract), outputs: [text], truncated };
}

/**
 * Evaluates `benchmark` on `model`: one pass per few-shot seed (a single pass for 0-shot), metrics per pass
 * and accuracy mean ± std over passes.
 *
 * @example
 * ```ts
 * import { evaluate } from "./run.ts";
 * import { loadBenchmark } from "./benchmarks/mod.ts";
 * import { Tokenizer } from "../data/tokenizer.ts";
 * import type { LanguageModel } from "../models/lm.ts";
 * declare const model: LanguageModel;
 * const result = await evaluate(await loadBenchmark("demo"), model, Tokenizer.llama2(), { shots: 3 });
 * console.log(result.accuracy.mean);
 * ```
 */
export async function evaluate(
  benchmark: Benchmark,
  model: LanguageModel,
  codec: TextCodec,
  options: EvalOptions = {},
): Promise<EvalResult> {
  const o: Resolved = {
    mode: options.mode ?? "loglik",
    shots: options.shots ?? 0,
    chat: options.chat ?? false,
    samples: options.samples ?? 5,
    temperature: options.temperature ?? 0.8,
    frequencyPenalty: options.frequencyPenalty ?? 1.0,
    maxTokens: options.maxTokens,
    maxContext: options.maxContext ?? Number.MAX_SAFE_INTEGER,
  };
  const seeds = options.seeds ?? FEWSHOT_SEEDS;
  const format = options.format ?? "meditron";
  checkModeFormat(o.mode, format);
  if (!Number.isInteger(o.shots) || o.shots < 0) {
    throw new Error(`shots must be a whole number, got ${o.shots}`);
  }
  if (o.shots > 0 && seeds.length === 0) throw new Error("k-shot needs at least one seed");
  const test = options.limit === undefined ? benchmark.test : benchmark.test.slice(0, options.limit);
  if (test.length === 0) throw new Error(`benchmark "${benchmark.name}" has no test question`);
  const passes: (number | null)[] = o.shots > 0 ? [...seeds] : [null];
  const total = passes.length * test.length;
  const records: GenerationRecord[] = [];
  const perSeed: SeedResult[] = [];
  let done = 0, truncated = 0;
  for (const seed of passes) {
    const picker = new DemoPicker(benchmark.train, o.shots, seed ?? 0, benchmark.demosBySubject);
    const graded: GradedAnswer[] = [];
    for (const [i, q] of test.entries()) {
      const prompt = buildPrompt(q, {
        system: systemText(benchmark.name, q.options.length),
        format,
        cot: o.mode === "cot" || o.mode === "sc-cot",
        chat: o.chat,
        demos: picker.demosFor(q),
      });
      const a = await answerOne(q, prompt, model, codec, o, (seed ?? 0) * 7919 + i * 131);
      if (a.truncated) truncated++;
      const labels = answerLabels(q);
      graded.push({ gold: q.answer, pred: a.pred, subject: q.subject, meta: q.meta });
      records.push({
        id: q.id,
        seed,
        prompt,
        outputs: a.outputs,
        ...(a.logprobs ? { logprobs: a.logprobs } : {}),
        pred: a.pred === null ? null : labels[a.pred],
        gold: goldLabel(q),
        correct: a.pred === q.answer,
        ...(q.subject !== undefined ? { subject: q.subject } : {}),
        ...(q.meta !== undefined ? { meta: q.meta } : {}),
      });
      options.onProgress?.(++done, total, test.length);
    }
    perSeed.push({
      seed,
      metrics: computeMetrics(graded, { classes: benchmark.classes, seed: options.bootstrapSeed ?? 1234 }),
    });
  }
  return {
    benchmark: benchmark.name,
    mode: o.mode,
    shots: o.shots,
    format,
    chat: o.chat,
    questions: test.length,
    perSeed,
    accuracy: meanStd(perSeed.map((s) => s.metrics.accuracy)),
    notes: benchmark.notes,
    truncated,
    records,
  };
}
