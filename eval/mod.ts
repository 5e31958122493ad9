/**
 * Evaluation: benchmark loaders for the published MedQA, MedMCQA, PubMedQA and MMLU-medical files and the
 * generated demo set, Meditron's prompts and answer extraction, metrics, and {@linkcode evaluate}.
 *
 * @example
 * ```ts
 * import { evaluate, loadBenchmark, markdownTable } from "./mod.ts";
 * import { Tokenizer } from "../data/tokenizer.ts";
 * import type { LanguageModel } from "../models/lm.ts";
 * declare const model: LanguageModel;
 * const result = await evaluate(await loadBenchmark("demo"), model, Tokenizer.llama2());
 * console.log(markdownTable([result]));
 * ```
 *
 * @module
 */
export * from "./question.ts";
export * from "./errors.ts";
export * from "./csv.ts";
export * from "./prompts.ts";
export * from "./extract.ts";
export * from "./metrics.ts";
export * from "./fewshot.ts";
export * from "./scoring.ts";
export * from "./run.ts";
export * from "./report.ts";
export * from "./benchmarks/mod.ts";
