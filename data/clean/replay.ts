/**
 * Replay: a seeded Bernoulli sample of a general-domain corpus JSONL (`text` per record) at a keep rate —
 * Meditron kept 0.0004 of RedPajama (~400M of ~1T tokens) to limit forgetting. The decision for the i-th
 * record is the i-th draw of a seeded generator, so a run is reproducible for a given file and seed.
 *
 * @module
 */
import { mulberry32 } from "../gpt_dataset.ts";
import { DocumentFilters, type FilterOptions } from "./filters.ts";
import { type JsonObject, stringField } from "./jsonl.ts";
import { LanguageDetector } from "./langid.ts";
import { type CleanResult, type RecordCleaner, runCleaner } from "./pipeline.ts";

/** Options of the replay sampler. Language ID and dedup apply only to sampled records; language is off by default. */
export interface ReplayOptions extends FilterOptions {
  /** Probability of keeping each record (Meditron: 0.0004). */
  keepRate: number;
  /** Seed of the draws (default 1234). */
  seed?: number;
}

/** Meditron's replay keep rate. */
export const MEDITRON_KEEP_RATE = 0.0004;

/**
 * The replay sampler (see the module doc); records need a string `text`.
 *
 * @example
 * ```ts
 * import { createReplaySampler } from "./replay.ts";
 * const s = createReplaySampler({ keepRate: 1, seed: 7 }, null);
 * console.log(s.clean({ text: "any text" }, "r.jsonl", 1)); // { text: "any text" }
 * ```
 */
export function createReplaySampler(options: ReplayOptions, langid: LanguageDetector | null): RecordCleaner {
  const { keepRate } = options;
  if (!(keepRate >= 0 && keepRate <= 1)) throw new Error(`keep rate must be in [0, 1], got ${keepRate}`);
  const rand = mulberry32(options.seed ?? 1234);
  const filters = new DocumentFilters({ ...options, language: options.language ?? null }, langid);
  return {
    clean(record, file, line) {
      const text = stringField(record, ["text"], file, line);
      if (rand() >= keepRate) return "not_sampled";
      return filters.check(text) ?? record;
    },
  };
}

/**
 * Samples in-memory records (loads language ID when `options.language` is set).
 *
 * @example
 * ```ts
 * import { sampleReplay } from "./replay.ts";
 * const docs = Array.from({ length: 1000 }, (_, i) => ({ text: `document ${i}` }));
 * console.log((await sampleReplay(docs, { keepRate: 0.1, seed: 1 })).counts.kept); // about 100
 * ```
 */
export async function sampleReplay(docs: Iterable<JsonObject>, options: ReplayOptions): Promise<CleanResult> {
  const langid = options.language ? await LanguageDetector.load() : null;
  return runCleaner(docs, createReplaySampler(options, langid));
}
