/**
 * Cleaning of the GAP-Replay pretraining corpus, as Meditron did it: clinical guidelines, PubMed abstracts,
 * full-text papers (S2ORC → markdown with `[bib_ref]`, `[fig_ref]`, `[fig]`, `[table]`, `[formula]` tokens)
 * and a general-domain replay sample; common text rules, English-only filtering, exact and MinHash
 * near-duplicate removal, and the combination into one corpus with a seeded train/validation split.
 * Streaming JSONL in and out, atomic outputs, a JSON report of what was kept and dropped and why.
 *
 * @example
 * ```ts
 * import { cleanGuidelines, cleanText } from "./mod.ts";
 * console.log(cleanText("## Dosing\n• 500 mg [1]")); // "# Dosing\n- 500 mg"
 * const { docs } = await cleanGuidelines([{ source: "who", title: "Malaria", raw_text: "…" }]);
 * ```
 *
 * @module
 */
export * from "./rules.ts";
export * from "./langid.ts";
export * from "./dedup.ts";
export * from "./minhash.ts";
export * from "./jsonl.ts";
export * from "./filters.ts";
export * from "./pipeline.ts";
export * from "./guideline_sources.ts";
export * from "./guidelines.ts";
export * from "./abstracts.ts";
export * from "./s2orc.ts";
export * from "./papers.ts";
export * from "./replay.ts";
export * from "./clean_file.ts";
export * from "./command.ts";
export * from "./combine.ts";
export * from "./args.ts";
