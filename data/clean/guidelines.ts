/**
 * Clinical guidelines: per-source truncation (start, drop and stop markers from
 * {@linkcode GUIDELINE_SOURCES}), the title prepended, the common rules, then minimum length, English only
 * and exact dedup on the normalised key. Input JSONL: `source`, `title`, `raw_text` (or `text`), `url`;
 * output: the same record with `clean_text` and `text` set to the cleaned text.
 *
 * @module
 */
import { DocumentFilters, type FilterOptions } from "./filters.ts";
import { countWords } from "./filters.ts";
import { GUIDELINE_SOURCES, rulesFor, type TruncationRules } from "./guideline_sources.ts";
import type { JsonObject } from "./jsonl.ts";
import { stringField } from "./jsonl.ts";
import { LanguageDetector } from "./langid.ts";
import { type CleanResult, type RecordCleaner, runCleaner } from "./pipeline.ts";
import { cleanText } from "./rules.ts";

/** Options of the guideline cleaner. */
export interface GuidelineOptions extends FilterOptions {
  /** Rules by source key, merged over {@linkcode GUIDELINE_SOURCES}. */
  sources?: Readonly<Record<string, TruncationRules>>;
  /** Source key for every record (instead of each record's `source` field). */
  source?: string;
  /** Prepend the `title` as the first line unless the text already starts with it (default true). */
  prependTitle?: boolean;
}

/** Default minimum words of a cleaned guideline. */
export const GUIDELINE_MIN_WORDS = 30;

function lineForms(line: string): string[] {
  const lower = line.trim().toLowerCase();
  const stripped = lower.replace(/^[\s#*>\-+_=.•▪■\d)(]+/, "").replace(/\*+$/, "").trim();
  const letters = lower.replace(/[^a-z ]+/g, "").trim();
  return [lower, stripped, letters];
}

function matches(forms: readonly string[], markers: readonly string[] | undefined): boolean {
  if (!markers) return false;
  for (const m of markers) for (const f of forms) if (f.startsWith(m)) return true;
  return false;
}

function headingLike(line: string): boolean {
  const t = line.trim();
  return t.startsWith("#") || countWords(t) <= 6;
}

/**
 * Truncates a raw guideline by its rules: from the first `start` line (kept; the whole text when none
 * matches), without `drop` lines, up to the first `stop` line or heading-like `headingStop` line.
 * Markers are matched case-insensitively at line start (see `guideline_sources.ts`).
 *
 * @example
 * ```ts
 * import { truncateGuideline } from "./guidelines.ts";
 * const raw = "Menu\n# Introduction\nText.\n---\n## References\n1. Smith";
 * console.log(truncateGuideline(raw, { start: ["introduction"], drop: ["---"], headingStop: ["references"] }));
 * // "# Introduction\nText."
 * ```
 */
export function truncateGuideline(text: string, rules: TruncationRules): string {
  const lines = text.split(/\r?\n/);
  const start = rules.start?.length
    ? lines.findIndex((l) => l.trim() !== "" && matches(lineForms(l), rules.start))
    : -1;
  const out: string[] = [];
  for (let i = Math.max(start, 0); i < lines.length; i++) {
    const line = lines[i];
    if (i !== start && line.trim() !== "") {
      const forms = lineForms(line);
      if (matches(forms, rules.stop)) break;
      if (rules.headingStop && headingLike(line) && matches(forms, rules.headingStop)) break;
      if (matches(forms, rules.drop)) continue;
    }
    out.push(line);
  }
  return out.join("\n").trim();
}

function titleOf(record: JsonObject): string {
  return typeof record.title === "string" ? record.title.replace(/\s+/g, " ").trim() : "";
}

function startsWithTitle(text: string, title: string): boolean {
  const first = text.trimStart().split("\n", 1)[0] ?? "";
  const norm = (s: string): string => s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
  return norm(first) !== "" && norm(first) === norm(title);
}

/**
 * The guideline cleaner (see the module doc). `langid` is needed unless `options.language` is `null`.
 *
 * @example
 * ```ts
 * import { createGuidelineCleaner } from "./guidelines.ts";
 * const cleaner = createGuidelineCleaner({ language: null, minWords: 3 }, null);
 * const out = cleaner.clean({ source: "who", title: "Malaria", raw_text: "Give ACT [1] early.\nAcknowledgements\nX" }, "g.jsonl", 1);
 * console.log(out); // { source: "who", title: "Malaria", raw_text: …, text: "Malaria\n\nGive ACT early.", clean_text: … }
 * ```
 */
export function createGuidelineCleaner(
  options: GuidelineOptions,
  langid: LanguageDetector | null,
): RecordCleaner {
  const table = { ...GUIDELINE_SOURCES, ...(options.sources ?? {}) };
  const filters = new DocumentFilters({ ...options, minWords: 0 }, langid);
  const prependTitle = options.prependTitle ?? true;
  return {
    clean(record, file, line) {
      const raw = stringField(record, ["raw_text", "text"], file, line);
      const source = options.source ?? (typeof record.source === "string" ? record.source : undefined);
      const key = (source ?? "").trim().toLowerCase();
      const rules = Object.hasOwn(table, key) ? table[key] : rulesFor(undefined);
      let text = truncateGuideline(raw, rules);
      const title = titleOf(record);
      if (prependTitle && title && !startsWithTitle(text, title)) text = `${title}\n\n${text}`;
      const clean = cleanText(text);
      if (clean === "" || clean === title) return "empty";
      if (countWords(clean) < (rules.minWords ?? options.minWords ?? GUIDELINE_MIN_WORDS)) return "too_short";
      const reason = filters.check(clean);
      if (reason) return reason;
      return { ...record, text: clean, clean_text: clean };
    },
  };
}

/**
 * Cleans in-memory guideline records (loads language ID when needed).
 *
 * @example
 * ```ts
 * import { cleanGuidelines } from "./guidelines.ts";
 * const raw_text = "## Treatment\n* Start metformin at 500 mg daily with meals (https://x.org).\n## References\n1. A";
 * const { docs, counts } = await cleanGuidelines([{ source: "nice", title: "Type 2 diabetes", raw_text }], { minWords: 5 });
 * console.log(docs[0].clean_text, counts.kept);
 * ```
 */
export async function cleanGuidelines(
  docs: Iterable<JsonObject>,
  options: GuidelineOptions = {},
): Promise<CleanResult> {
  const langid = options.language === null ? null : await LanguageDetector.load();
  return runCleaner(docs, createGuidelineCleaner(options, langid));
}
