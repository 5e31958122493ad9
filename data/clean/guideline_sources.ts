/**
 * Per-source truncation rules of clinical guidelines, as data (after Meditron's per-source processors).
 * A line matches a marker when one of its forms starts with the marker (case-insensitive): the trimmed line,
 * the line without `#`, `*`, `-`, numbering and leading punctuation, and the line reduced to letters and
 * spaces. `start` markers: the text begins at the first matching line; `drop`: matching lines are removed;
 * `stop`: the text ends before the first matching line (after the start); `headingStop`: like `stop` but only
 * on heading-like lines (a markdown heading, or at most six words), so "References" ends a guideline while
 * "References to dose tables are given below" does not.
 *
 * @module
 */

/** Truncation rules of one guideline source. */
export interface TruncationRules {
  /** The text begins at the first line starting with one of these (if any matches). */
  start?: readonly string[];
  /** Lines starting with one of these are removed. */
  drop?: readonly string[];
  /** The text ends before the first line starting with one of these. */
  stop?: readonly string[];
  /** The text ends before the first heading-like line starting with one of these. */
  headingStop?: readonly string[];
  /** Minimum words of the cleaned guideline (overrides the run's minimum). */
  minWords?: number;
}

/** Stop markers of sources without rules of their own (heading-like lines only). */
export const DEFAULT_STOP_MARKERS: readonly string[] = [
  "references",
  "reference list",
  "bibliography",
  "acknowledgements",
  "acknowledgments",
  "acknowledgement",
  "acknowledgment",
  "disclaimer",
  "conflict of interest",
  "conflicts of interest",
  "declaration of interest",
  "declarations of interest",
  "competing interests",
  "funding",
];

/** Rules of sources without an entry in {@linkcode GUIDELINE_SOURCES}. */
export const DEFAULT_RULES: TruncationRules = { headingStop: DEFAULT_STOP_MARKERS };

/**
 * Rules by `source` key (the `source` field of the guideline JSONL), from Meditron's processors: AAFP, CCO,
 * CDC, CMA, CPS, drugs.com, Guideline Central, ICRC, IDSA, MAGIC, Mayo Clinic, NICE, RCH, SPOR, WHO, WikiDoc.
 *
 * @example
 * ```ts
 * import { GUIDELINE_SOURCES } from "./guideline_sources.ts";
 * console.log(GUIDELINE_SOURCES.idsa.stop?.includes("disclaimer")); // true
 * ```
 */
export const GUIDELINE_SOURCES: Readonly<Record<string, TruncationRules>> = {
  aafp: {
    start: ["key recommendations", "clinical preventive service recommendation", "recommendation"],
    drop: ["===", "---", "**[", "[", "http"],
    stop: [
      "references",
      "related content",
      "more about choosing wisely",
      "more about practice guidelines",
      "sources",
      "*these recommendations are provided only",
      "*these guidelines are provided only",
    ],
  },
  cco: {
    start: ["questions", "introduction", "intended purpose", "guideline objectives"],
    drop: [
      "these guidelines recommendations have been endorsed",
      "this report is copyrighted by",
      "an assessment conducted in ",
      "care has been taken in the preparation ",
      "this is a quick reference guide",
    ],
    headingStop: DEFAULT_STOP_MARKERS,
  },
  cdc: { headingStop: ["acknowledg", ...DEFAULT_STOP_MARKERS] },
  cdc_diseases: { start: ["###"], drop: ["insurance"], stop: ["more information", "after travel"] },
  cma: {
    start: [
      "key information",
      "### key information",
      "### 1. what",
      "### abstract",
      "### what",
      "overview",
      "introduction",
      "preamble",
    ],
    drop: ["refer to", "===", "---", "* [", "[", "![", "|", "footnote"],
    stop: [
      "selected references",
      "references",
      "authors’ statement",
      "appendix",
      "acknowledgments",
      "acknowledgements",
      "report a problem",
      "list of abbreviations",
      "additional tables",
      "additional resources",
    ],
  },
  cma_pdfs: { stop: ["acknowledg", "disclaimer", "conflict of interest", "funding"] },
  cps: {
    start: ["### abstract"],
    drop: ["|", "figure", "the canadian paediatric society gives permission", "keywords:", "key words:"],
    stop: ["acknowledgements", "selected resources", "current: about cps position"],
  },
  drugs: {
    drop: [
      "[medical",
      "===",
      "---",
      "* [",
      "[",
      "always consult your healthcare provider",
      "frequently asked",
      "more about",
      "further information",
    ],
  },
  gc: {
    start: ["document objectives"],
    drop: ["publication date", "(c)", "www", "http"],
    stop: ["disclaimer", "recommendation grading", "source citation"],
  },
  icrc: { stop: ["acknowledgements", "acknowledgments", "contacts"] },
  idsa: {
    start: ["introduction", "abstract"],
    drop: ["---", "===", "published", "[!", "appropriate use criteria"],
    stop: [
      "references",
      "for more information",
      "to view the full version",
      "disclaimer",
      "supplementary",
      "acknowledgments",
      "notes",
      "to access a more user",
    ],
  },
  magic: {
    start: ["abstract", "introduction"],
    drop: [
      "updates",
      "===",
      "---",
      "![",
      "please visit the",
      "< less",
      "more >",
      "write general section text",
      "loading data...",
      "view section text",
      "about this guideline",
    ],
    headingStop: [
      "disclaimer",
      "disclosure",
      "funding",
      "acknowledgements",
      "acknowledgments",
      "declarations of interest",
      "references",
    ],
  },
  mayo: { drop: ["mayoclinic"], headingStop: DEFAULT_STOP_MARKERS },
  nice: { headingStop: DEFAULT_STOP_MARKERS },
  rch: { headingStop: DEFAULT_STOP_MARKERS },
  spor: { stop: ["conflict of interest"] },
  who: { start: ["introduction "], drop: ["|", "under the terms of this licence"], stop: ["acknowl"] },
  wikidoc: {
    drop: [
      "editor",
      "associate editor",
      "media:",
      "click here",
      "for patient information click here",
      "how to edit trial information",
      "template:",
      "to go back to the main page",
    ],
    stop: ["external links", "redirect to"],
    headingStop: ["references"],
  },
};

/**
 * The rules for a `source` key: its entry in {@linkcode GUIDELINE_SOURCES} (case-insensitive), else
 * {@linkcode DEFAULT_RULES}.
 *
 * @example
 * ```ts
 * import { rulesFor } from "./guideline_sources.ts";
 * console.log(rulesFor("unknown-society").headingStop?.[0]); // "references"
 * ```
 */
export function rulesFor(source: string | undefined): TruncationRules {
  const key = (source ?? "").trim().toLowerCase();
  return Object.hasOwn(GUIDELINE_SOURCES, key) ? GUIDELINE_SOURCES[key] : DEFAULT_RULES;
}

const RULE_LISTS = ["start", "drop", "stop", "headingStop"] as const;

/**
 * Validates a rules table read from JSON or YAML (`{ source: { start?, drop?, stop?, headingStop?,
 * minWords? } }`); unknown keys and wrong types are errors naming `where` and the key. Markers are
 * lower-cased (matching is case-insensitive).
 *
 * @example
 * ```ts
 * import { parseTruncationRules } from "./guideline_sources.ts";
 * const rules = parseTruncationRules({ mysoc: { stop: ["Appendix"] } }, "rules.json");
 * console.log(rules.mysoc.stop); // ["appendix"]
 * ```
 */
export function parseTruncationRules(value: unknown, where: string): Record<string, TruncationRules> {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(value)) throw new Error(`${where}: expected an object of rules by source`);
  const out: Record<string, TruncationRules> = {};
  for (const [source, raw] of Object.entries(value)) {
    if (!isObject(raw)) throw new Error(`${where}: rules of '${source}' must be an object`);
    const rules: { -readonly [K in keyof TruncationRules]: TruncationRules[K] } = {};
    for (const [key, v] of Object.entries(raw)) {
      if (key === "minWords") {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
          throw new Error(`${where}: '${source}.minWords' must be a non-negative integer`);
        }
        rules.minWords = v;
      } else if ((RULE_LISTS as readonly string[]).includes(key)) {
        if (!Array.isArray(v) || !v.every((m) => typeof m === "string" && m.trim() !== "")) {
          throw new Error(`${where}: '${source}.${key}' must be a list of non-empty strings`);
        }
        rules[key as typeof RULE_LISTS[number]] = v.map((m: string) => m.toLowerCase());
      } else {
        throw new Error(
          `${where}: unknown key '${source}.${key}' (expected ${RULE_LISTS.join(", ")}, minWords)`,
        );
      }
    }
    out[source.toLowerCase()] = rules;
  }
  return out;
}
