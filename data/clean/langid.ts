/**
 * Language identification for the English-only filter.
 *
 * Library: npm `eld` (Nito-ELD, Efficient Language Detector), medium database. Meditron used Python's
 * `langdetect`; among the maintained npm detectors that run under Deno without native code, ELD is the
 * most accurate in its published benchmarks (≈99% on sentences vs ≈90% for `franc`, which also needs long
 * inputs and returns ISO 639-3 codes), it is actively released (2.x, 2026), it answers ISO 639-1 codes like
 * `langdetect` (`en`, `fr`, …) with per-language scores, and it is fast (≈ 50–100 µs per call). ELD reads
 * only the first ~350 bytes of its input, so {@linkcode LanguageDetector.detect} votes over a few windows
 * of the document. `tinyld` was the other candidate; it has fewer releases and lower accuracy in the same
 * benchmarks.
 *
 * @module
 */
/** The part of ELD's API used here. */
interface EldDetector {
  detect(text: string): { language: string; getScores(): Record<string, number> };
}

/** The detected language of a text. */
export interface LanguageGuess {
  /** ISO 639-1 code (`en`, `fr`, …), or `und` when nothing could be detected. */
  language: string;
  /** ELD's score of that language (0–1; ≈0.7–0.8 on clear prose). */
  score: number;
}

/** Options of {@linkcode LanguageDetector.isLanguage}. */
export interface LanguageFilterOptions {
  /** Language to keep (ISO 639-1, default `en`). */
  language?: string;
  /** Minimum score of the detected language (default 0: the top language must match, as in Meditron). */
  threshold?: number;
  /** Characters examined from the start of the text (default 10 000, as Meditron's guideline filter). */
  sampleChars?: number;
}

let shared: Promise<LanguageDetector> | undefined;

/** Characters per ELD call (ELD itself stops after ~350 bytes). */
const WINDOW_CHARS = 360;

/**
 * Language detector over ELD's medium database. The database (≈2 MB, ≈0.7 s to load) is imported on the
 * first {@linkcode LanguageDetector.load}, so importing this module costs nothing.
 *
 * @example
 * ```ts
 * import { LanguageDetector } from "./langid.ts";
 * const langid = await LanguageDetector.load();
 * console.log(langid.detect("Le patient a été traité par aspirine.").language); // "fr"
 * ```
 */
export class LanguageDetector {
  readonly #eld: EldDetector;

  private constructor(eld: EldDetector) {
    this.#eld = eld;
  }

  /** The process-wide detector (loaded once). */
  static load(): Promise<LanguageDetector> {
    shared ??= import("eld/medium").then((m) => new LanguageDetector(m.eld as EldDetector));
    return shared;
  }

  /**
   * Detects the language of the first `sampleChars` characters of `text`. ELD reads only ~350 bytes per
   * call (≈ 50–150 µs), so a longer sample is read as one window per 1000 characters, at most `windows`
   * (default 4), spread evenly from its start to its end; the language with the highest mean score wins, so
   * that a title or a boilerplate line alone does not decide (PubMed gives English titles to foreign papers).
   * The first and the last window are read first; when they agree, the inner ones are skipped.
   */
  detect(text: string, sampleChars = 10_000, windows = 4): LanguageGuess {
    const sample = text.length > sampleChars ? text.slice(0, sampleChars) : text;
    const n = sample.length <= WINDOW_CHARS
      ? 1
      : Math.max(1, Math.min(windows, Math.ceil(sample.length / 1000)));
    // Windows in the order first, last, then the inner ones; two windows that agree settle it.
    const order = n === 1 ? [0] : [0, n - 1, ...Array.from({ length: n - 2 }, (_, i) => i + 1)];
    const totals = new Map<string, number>();
    let voters = 0, agreed: string | null = null, unanimous = true;
    for (const i of order) {
      let from = n === 1 ? 0 : Math.floor((i * (sample.length - WINDOW_CHARS)) / (n - 1));
      if (from > 0) {
        const space = sample.indexOf(" ", from);
        from = space < 0 || space - from > 40 ? from : space + 1;
      }
      const result = this.#eld.detect(sample.slice(from, from + WINDOW_CHARS));
      if (!result.language) continue;
      voters++;
      for (const [lang, score] of Object.entries(result.getScores())) {
        totals.set(lang, (totals.get(lang) ?? 0) + score);
      }
      if (agreed === null) agreed = result.language;
      else if (agreed !== result.language) unanimous = false;
      if (voters >= 2 && unanimous) break;
    }
    let language = "und", best = 0;
    for (const [lang, total] of totals) {
      if (total > best) [language, best] = [lang, total];
    }
    return voters === 0 ? { language: "und", score: 0 } : { language, score: best / voters };
  }

  /** Whether `text` is in `options.language` (default English) with at least `options.threshold` score. */
  isLanguage(text: string, options: LanguageFilterOptions = {}): boolean {
    const guess = this.detect(text, options.sampleChars);
    return guess.language === (options.language ?? "en") && guess.score >= (options.threshold ?? 0);
  }
}
