/**
 * Full-text papers (S2ORC records: `corpusid`, `content.text`, `content.annotations`, optional `title`):
 * rebuilt as markdown by {@linkcode s2orcToMarkdown}, deduplicated by `corpusid`, then the shared filters.
 * The output record keeps the top-level fields except `content` and sets `text`.
 *
 * @module
 */
import { idKey, KeySet } from "./dedup.ts";
import { countWords, DocumentFilters, type FilterOptions } from "./filters.ts";
import { JsonlError, type JsonObject } from "./jsonl.ts";
import { LanguageDetector } from "./langid.ts";
import { type CleanResult, type RecordCleaner, runCleaner } from "./pipeline.ts";
import { type S2orcOptions, s2orcToMarkdown } from "./s2orc.ts";

/** Options of the paper cleaner. */
export interface PaperOptions extends FilterOptions, S2orcOptions {}

/** Default minimum words of a paper's markdown. */
export const PAPER_MIN_WORDS = 50;

/**
 * The paper cleaner (see the module doc). `langid` is needed unless `options.language` is `null`.
 *
 * @example
 * ```ts
 * import { createPaperCleaner } from "./papers.ts";
 * const c = createPaperCleaner({ language: null, minWords: 1 }, null);
 * const record = { corpusid: 1, content: { text: "Hello world", annotations: { paragraph: '[{"start":0,"end":11}]' } } };
 * console.log(c.clean(record, "p.jsonl", 1)); // { corpusid: 1, text: "Hello world" }
 * ```
 */
export function createPaperCleaner(options: PaperOptions, langid: LanguageDetector | null): RecordCleaner {
  const seen = new KeySet();
  const filters = new DocumentFilters({ ...options, minWords: 0 }, langid);
  const minWords = options.minWords ?? PAPER_MIN_WORDS;
  return {
    clean(record, file, line) {
      const content = record.content;
      if (typeof content !== "object" || content === null || Array.isArray(content)) {
        throw new JsonlError(file, line, "missing object field 'content'", "missing_field");
      }
      const { text, annotations } = content as Record<string, unknown>;
      if (text === null || text === "") return "empty";
      if (typeof text !== "string") {
        throw new JsonlError(file, line, "missing string field 'content.text'", "missing_field");
      }
      const id = idKey(record.corpusid);
      if (id !== null && seen.has(id)) return "duplicate_id";
      const title = typeof record.title === "string" && record.title.trim() ? record.title : undefined;
      const markdown = s2orcToMarkdown(text, annotations, file, line, title, options);
      if (markdown === "") return "empty";
      if (countWords(markdown) < minWords) return "too_short";
      const reason = filters.check(markdown);
      if (reason) return reason;
      if (id !== null) seen.add(id);
      const { content: _content, ...rest } = record;
      return { ...rest, text: markdown };
    },
  };
}

/**
 * Cleans in-memory S2ORC records (loads language ID when needed).
 *
 * @example
 * ```ts
 * import { cleanPapers } from "./papers.ts";
 * const { counts } = await cleanPapers([], { language: null });
 * console.log(counts.read); // 0
 * ```
 */
export async function cleanPapers(
  docs: Iterable<JsonObject>,
  options: PaperOptions = {},
): Promise<CleanResult> {
  const langid = options.language === null ? null : await LanguageDetector.load();
  return runCleaner(docs, createPaperCleaner(options, langid));
}
