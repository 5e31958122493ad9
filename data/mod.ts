/**
 * Data pipeline: the Llama-2 tokenizer, corpus documents, GAP-Replay cleaning, Megatron indexed datasets,
 * sample indices and blends, the tokenize job and `data prepare`, the embedded demo corpus, the Hugging Face
 * Hub client and Parquet rows. Imports nothing else of the toolkit.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "@meditron/toolkit/data";
 * console.log(Tokenizer.llama2().encode("Hello world")); // [1, 15043, 3186]
 * ```
 *
 * @module
 */
export * from "./tokenizer.ts";
export * from "./corpus.ts";
export * from "./gpt_dataset.ts";
export * from "./indexed_dataset.ts";
export * from "./blend.ts";
export * from "./tokenize_job.ts";
export type { TokenizerWorkerResult } from "./tokenizer_worker.ts";
export * from "./prepare.ts";
export * as clean from "./clean/mod.ts";
export type { CleanReport, CleanSource } from "./clean/clean_file.ts";
export type { CombineReport, SubsetCounts } from "./clean/combine.ts";
export type { DropReason } from "./clean/filters.ts";
export * as embedded from "./embedded/mod.ts";
export * from "./hub.ts";
export * from "./parquet.ts";
