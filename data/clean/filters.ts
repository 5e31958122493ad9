/**
 * The document filters every source shares, in the order they run on a cleaned text: minimum length,
 * language, exact duplicate (normalised key), near-duplicate (MinHash, optional); and the counts of kept
 * and dropped documents by reason that go to the cleaning report.
 *
 * @module
 */
import { dedupKey, KeySet } from "./dedup.ts";
import type { LanguageDetector } from "./langid.ts";
import { MinHashIndex, type MinHashOptions } from "./minhash.ts";

/** Why a document was dropped. */
export type DropReason =
  | "bad_line"
  | "missing_field"
  | "empty"
  | "too_short"
  | "not_english"
  | "duplicate_id"
  | "duplicate"
  | "near_duplicate"
  | "in_papers"
  | "not_sampled";

/** Options of {@linkcode DocumentFilters}. */
export interface FilterOptions {
  /** Minimum number of words of the cleaned text (default 0). */
  minWords?: number;
  /** Language to keep (ISO 639-1), or `null` to keep every language (default `en`). */
  language?: string | null;
  /** Minimum language score (see {@linkcode LanguageDetector.isLanguage}; default 0). */
  languageThreshold?: number;
  /** Characters given to language ID (default 10 000). */
  languageSampleChars?: number;
  /** Characters of the exact-dedup key (default 500); 0 disables exact dedup. */
  dedupChars?: number;
  /** Near-duplicate removal with MinHash, off when absent. */
  nearDedup?: MinHashOptions;
}

/**
 * Per-reason counters of a cleaning run.
 *
 * @example
 * ```ts
 * import { CleanCounts } from "./filters.ts";
 * const c = new CleanCounts();
 * c.read++;
 * c.drop("too_short");
 * console.log(c.dropped); // { too_short: 1 }
 * ```
 */
export class CleanCounts {
  /** Records read (non-blank lines). */
  read = 0;
  /** Records written. */
  kept = 0;
  /** Dropped records by reason. */
  readonly dropped: Partial<Record<DropReason, number>> = {};

  /** Counts one dropped record. */
  drop(reason: DropReason): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }
}

/**
 * Number of whitespace-separated words of `text`.
 *
 * @example
 * ```ts
 * import { countWords } from "./filters.ts";
 * console.log(countWords("  Give 5 mg\tdaily.\n")); // 4
 * ```
 */
export function countWords(text: string): number {
  let n = 0, inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x2028 || c === 0x2029 ||
      c === 0x3000 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x1680 ||
      c === 0xfeff;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      n++;
    }
  }
  return n;
}

/**
 * The shared filters, stateful across documents (dedup sets grow with every kept document).
 *
 * @example
 * ```ts
 * import { DocumentFilters } from "./filters.ts";
 * const f = new DocumentFilters({ minWords: 2, language: null }, null);
 * console.log(f.check("Aspirin works."), f.check("Aspirin works!"), f.check("Hi")); // null duplicate too_short
 * ```
 */
export class DocumentFilters {
  readonly #minWords: number;
  readonly #language: string | null;
  readonly #threshold: number;
  readonly #sampleChars: number;
  readonly #dedupChars: number;
  readonly #langid: LanguageDetector | null;
  readonly #keys = new KeySet();
  readonly #near: MinHashIndex | null;

  /** `langid` is required when `options.language` is not `null`. */
  constructor(options: FilterOptions, langid: LanguageDetector | null) {
    this.#minWords = options.minWords ?? 0;
    this.#language = options.language === undefined ? "en" : options.language;
    this.#threshold = options.languageThreshold ?? 0;
    this.#sampleChars = options.languageSampleChars ?? 10_000;
    this.#dedupChars = options.dedupChars ?? 500;
    if (this.#language !== null && !langid) throw new Error("language filter needs a LanguageDetector");
    this.#langid = langid;
    this.#near = options.nearDedup ? new MinHashIndex(options.nearDedup) : null;
  }

  /** The reason to drop `text`, or `null` to keep it (and remember it for deduplication). */
  check(text: string): DropReason | null {
    if (text.trim() === "") return "empty";
    if (countWords(text) < this.#minWords) return "too_short";
    if (this.#language !== null) {
      const ok = this.#langid!.isLanguage(text, {
        language: this.#language,
        threshold: this.#threshold,
        sampleChars: this.#sampleChars,
      });
      if (!ok) return "not_english";
    }
    const key = this.#dedupChars > 0 ? dedupKey(text, this.#dedupChars) : null;
    if (key !== null && this.#keys.has(key)) return "duplicate";
    if (this.#near) {
      const sig = this.#near.signature(text);
      if (this.#near.query(sig) >= 0) return "near_duplicate";
      this.#near.insert(sig);
    }
    if (key !== null) this.#keys.add(key);
    return null;
  }
}
