/**
 * PubMed abstracts (Semantic Scholar `abstracts` records: `corpusid`, `abstract` or `text`, optional
 * `title`): the text is `title + "\n" + abstract` with URLs and reference markup removed; records whose
 * paper is in the full-text set are dropped (`in_papers`), then duplicates by `corpusid`, then the shared
 * filters (minimum length, English only, exact and optional near-duplicate removal).
 *
 * @module
 */
import { idKey, KeySet } from "./dedup.ts";
import { countWords, DocumentFilters, type FilterOptions } from "./filters.ts";
import { JsonlError, JsonlReader, type JsonObject, parseJsonlLine, stringField } from "./jsonl.ts";
import { LanguageDetector } from "./langid.ts";
import { type CleanResult, type RecordCleaner, runCleaner } from "./pipeline.ts";
import { collapseBlankLines, removeReferenceMarkup, removeUrls, stripGlyphs } from "./rules.ts";

/** Options of the abstract cleaner. */
export interface AbstractOptions extends FilterOptions {
  /** `corpusid`s of papers kept in full text (see {@linkcode readCorpusIds}); their abstracts are dropped. */
  excludeIds?: KeySet;
}

/** Default minimum words of an abstract (title included). */
export const ABSTRACT_MIN_WORDS = 10;

/**
 * The text of an abstract record: `title + "\n" + abstract`, URLs and reference markup removed.
 *
 * @example
 * ```ts
 * import { abstractText } from "./abstracts.ts";
 * console.log(abstractText("Statins", "They lower LDL [1] (see https://x.org).")); // "Statins\nThey lower LDL."
 * ```
 */
export function abstractText(title: string, abstract: string): string {
  const joined = title.trim() ? `${title.trim()}\n${abstract}` : abstract;
  return collapseBlankLines(removeReferenceMarkup(removeUrls(stripGlyphs(joined))));
}

const LEADING_CORPUSID = /^\s*\{\s*"corpusid"\s*:\s*("?)(\d+)\1\s*[,}]/;

/** Options of {@linkcode readCorpusIds}. */
export interface ReadIdsOptions {
  /** Skip malformed lines instead of throwing. */
  skipBad?: boolean;
}

/**
 * Streams a JSONL file and collects its `corpusid`s (records without one are ignored). A line that starts
 * with `{"corpusid": N,` (as S2ORC's do) is not parsed further, so a multi-GB full-text file is read fast.
 *
 * @example
 * ```ts
 * import { readCorpusIds } from "./abstracts.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"corpusid": 7, "text": "…"}\n');
 * console.log((await readCorpusIds(path)).has("7")); // true
 * ```
 */
export async function readCorpusIds(path: string, options: ReadIdsOptions = {}): Promise<KeySet> {
  const ids = new KeySet();
  for await (const { text, line } of new JsonlReader(path)) {
    const fast = LEADING_CORPUSID.exec(text); // S2ORC lines start with it: no need to parse the full text
    if (fast) {
      ids.add(fast[2]);
      continue;
    }
    let record: JsonObject;
    try {
      record = parseJsonlLine(text, path, line);
    } catch (e) {
      if (options.skipBad && e instanceof JsonlError) continue;
      throw e;
    }
    const key = idKey(record.corpusid);
    if (key !== null) ids.add(key);
  }
  return ids;
}

/**
 * The abstract cleaner (see the module doc). `langid` is needed unless `options.language` is `null`.
 *
 * @example
 * ```ts
 * import { createAbstractCleaner } from "./abstracts.ts";
 * import { KeySet } from "./dedup.ts";
 * const excludeIds = new KeySet();
 * excludeIds.add("2");
 * const c = createAbstractCleaner({ language: null, minWords: 1, excludeIds }, null);
 * console.log(c.clean({ corpusid: 2, abstract: "x" }, "a.jsonl", 1)); // "in_papers"
 * ```
 */
export function createAbstractCleaner(
  options: AbstractOptions,
  langid: LanguageDetector | null,
): RecordCleaner {
  const seen = new KeySet();
  const filters = new DocumentFilters({ ...options, minWords: 0 }, langid);
  const minWords = options.minWords ?? ABSTRACT_MIN_WORDS;
  return {
    clean(record, file, line) {
      const abstract = stringField(record, ["abstract", "text"], file, line);
      const id = idKey(record.corpusid);
      if (id !== null && options.excludeIds?.has(id)) return "in_papers";
      if (id !== null && !seen.add(id)) return "duplicate_id";
      const title = typeof record.title === "string" ? record.title : "";
      if (abstract.trim() === "") return "empty";
      const text = abstractText(title, abstract);
      if (countWords(text) < minWords) return "too_short";
      const reason = filters.check(text);
      return reason ?? { ...record, text };
    },
  };
}

/**
 * Cleans in-memory abstract records (loads language ID when needed).
 *
 * @example
 * ```ts
 * import { cleanAbstracts } from "./abstracts.ts";
 * const { counts } = await cleanAbstracts([{ corpusid: 1, title: "T", abstract: "Aspirin lowers the risk of stroke in adults." }]);
 * console.log(counts.kept); // 1
 * ```
 */
export async function cleanAbstracts(
  docs: Iterable<JsonObject>,
  options: AbstractOptions = {},
): Promise<CleanResult> {
  const langid = options.language === null ? null : await LanguageDetector.load();
  return runCleaner(docs, createAbstractCleaner(options, langid));
}
