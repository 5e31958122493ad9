// Guidelines: per-source truncation as data, title, minimum length, English only, exact dedup.
import assert from "node:assert/strict";
import { createGuidelineCleaner, truncateGuideline } from "../../../data/clean/guidelines.ts";
import {
  DEFAULT_RULES,
  GUIDELINE_SOURCES,
  parseTruncationRules,
  rulesFor,
} from "../../../data/clean/guideline_sources.ts";
import { dedupKey } from "../../../data/clean/dedup.ts";
import { LanguageDetector } from "../../../data/clean/langid.ts";
import { runCleaner } from "../../../data/clean/pipeline.ts";

const BODY = "Offer metformin as first-line treatment to adults with type 2 diabetes and review the dose " +
  "every three months. Measure HbA1c at least twice a year and adjust therapy to individual targets.";

Deno.test("truncation: text starts at the first start marker and stops at a stop marker", () => {
  const raw = [
    "Skip to content",
    "Home > Guidelines",
    "## Key Recommendations",
    "Screen adults aged 40 to 70 for diabetes.",
    "[Back to top](#top)",
    "References",
    "1. Smith J. Screening. 2019.",
  ].join("\n");
  assert.equal(
    truncateGuideline(raw, GUIDELINE_SOURCES.aafp),
    "## Key Recommendations\nScreen adults aged 40 to 70 for diabetes.",
    "start line kept, '[' lines dropped, references and below cut",
  );
  assert.equal(truncateGuideline(raw, {}), raw, "no rules: unchanged");
  assert.equal(
    truncateGuideline("Intro text\nMore text", { start: ["never matches"] }),
    "Intro text\nMore text",
    "no start marker found: the whole text",
  );
});

Deno.test("truncation: stop markers match headings, numbered and emphasised forms, case-insensitively", () => {
  const rules = rulesFor("some-new-society");
  assert.equal(rules, DEFAULT_RULES);
  for (
    const stop of [
      "## References",
      "7. REFERENCES",
      "**Acknowledgements**",
      "Disclaimer:",
      "Conflict of interest",
    ]
  ) {
    assert.equal(truncateGuideline(`Body line one.\n${stop}\nTail text.`, rules), "Body line one.", stop);
  }
  // A long prose line that merely starts with a marker word is not a section heading.
  const prose = "References to dosing tables are given in the appendix of this document for every drug.";
  assert.equal(truncateGuideline(`Body.\n${prose}\nMore.`, rules), `Body.\n${prose}\nMore.`);
});

Deno.test("truncation: drop prefixes remove lines anywhere, not the start line", () => {
  assert.equal(
    truncateGuideline("=== banner\nIntroduction\nKeep me\n--- rule\nKeep me too", {
      start: ["introduction"],
      drop: ["---", "==="],
    }),
    "Introduction\nKeep me\nKeep me too",
  );
  assert.equal(
    truncateGuideline("Malaria\nEditor-In-Chief: X\nText", GUIDELINE_SOURCES.wikidoc),
    "Malaria\nText",
  );
});

Deno.test("guideline cleaner: truncation, title, common rules; output adds clean_text and text", () => {
  const cleaner = createGuidelineCleaner({ language: null }, null);
  const record = {
    source: "WHO",
    title: "Diabetes management",
    url: "https://www.who.int/x",
    raw_text:
      `Cover page\nIntroduction to the guideline\n## Treatment\n• ${BODY} [1]\n\n\n## Acknowledgements\nThanks.`,
  };
  const out = cleaner.clean(record, "g.jsonl", 1);
  assert.ok(typeof out === "object");
  const expected = `Diabetes management\n\nIntroduction to the guideline\n\n# Treatment\n- ${BODY}`;
  assert.equal(out.clean_text, expected);
  assert.equal(out.text, expected);
  assert.equal(out.url, record.url, "input fields kept");
  assert.equal(out.raw_text, record.raw_text);
  const titled = cleaner.clean({ ...record, title: "Introduction to the guideline" }, "g.jsonl", 2);
  assert.ok(typeof titled === "object");
  assert.ok(
    String(titled.text).startsWith("Introduction to the guideline\n\n# Treatment"),
    "title not repeated",
  );
});

Deno.test("guideline cleaner: text field fallback, minimum length, per-source overrides", () => {
  const cleaner = createGuidelineCleaner({ language: null, minWords: 10 }, null);
  assert.equal(cleaner.clean({ source: "x", text: "Too short to keep." }, "g.jsonl", 1), "too_short");
  assert.equal(cleaner.clean({ source: "x", text: "12 | 34\n---" }, "g.jsonl", 2), "empty");
  const ok = cleaner.clean({ source: "x", text: BODY }, "g.jsonl", 3);
  assert.ok(typeof ok === "object" && ok.clean_text === BODY);
  const custom = createGuidelineCleaner({
    language: null,
    sources: { mysoc: { stop: ["appendix"], minWords: 3 } },
  }, null);
  const out = custom.clean(
    { source: "mysoc", text: "Give fluids early to children.\nAppendix A\nLong tables." },
    "g",
    4,
  );
  assert.ok(typeof out === "object");
  assert.equal(out.clean_text, "Give fluids early to children.");
  assert.throws(
    () => cleaner.clean({ source: "x", title: "No text" }, "g.jsonl", 9),
    /g\.jsonl:9: missing string field 'raw_text' or 'text'/,
  );
});

Deno.test("exact dedup key: first 500 chars, lower-case, alphanumerics only", () => {
  assert.equal(dedupKey("# Asthma — Adults!\n\nUse SABA."), "asthmaadultsusesaba");
  assert.equal(dedupKey("ASTHMA adults, use saba"), dedupKey("# Asthma — Adults!\n\nUse SABA."));
  const long = "a".repeat(500);
  assert.equal(
    dedupKey(long + "DIFFERENT TAIL"),
    dedupKey(long + "other tail"),
    "only the first 500 chars count",
  );
  assert.notEqual(dedupKey("Dose 5 mg"), dedupKey("Dose 50 mg"));
});

Deno.test("guidelines: duplicates by normalised key and non-English documents are dropped and counted", async () => {
  const langid = await LanguageDetector.load();
  const french = "Proposer la metformine comme traitement de première intention aux adultes atteints de " +
    "diabète de type 2 et revoir la dose tous les trois mois. Mesurer l'HbA1c au moins deux fois par an.";
  const docs = [
    { source: "nice", title: "", raw_text: BODY },
    { source: "nice", title: "", raw_text: `## ${BODY.toUpperCase()}` }, // same key after normalisation
    { source: "nice", title: "", raw_text: french },
    { source: "nice", title: "", raw_text: BODY.replace("metformin", "sulfonylurea") },
  ];
  const { docs: kept, counts } = runCleaner(docs, createGuidelineCleaner({}, langid));
  assert.equal(kept.length, 2);
  assert.deepEqual(counts.dropped, { duplicate: 1, not_english: 1 });
  assert.equal(counts.read, 4);
  assert.equal(counts.kept, 2);
});

Deno.test("rules table from JSON: validated, lower-cased; unknown keys and bad types are errors", () => {
  assert.deepEqual(
    parseTruncationRules({ MySoc: { start: ["Intro"], stop: ["Appendix"], minWords: 5 } }, "r.json"),
    {
      mysoc: { start: ["intro"], stop: ["appendix"], minWords: 5 },
    },
  );
  assert.throws(
    () => parseTruncationRules({ a: { stops: ["x"] } }, "r.json"),
    /r\.json: unknown key 'a\.stops'/,
  );
  assert.throws(() => parseTruncationRules({ a: { stop: "x" } }, "r.json"), /'a\.stop' must be a list/);
  assert.throws(() => parseTruncationRules({ a: { minWords: -1 } }, "r.json"), /'a\.minWords'/);
  assert.throws(() => parseTruncationRules([], "r.json"), /expected an object/);
});
