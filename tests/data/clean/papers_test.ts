// S2ORC → markdown on a hand-built paper in the real schema (annotations are JSON-encoded span lists).
import assert from "node:assert/strict";
import { createPaperCleaner } from "../../../data/clean/papers.ts";
import { parseAnnotations, s2orcToMarkdown } from "../../../data/clean/s2orc.ts";
import { JsonlError } from "../../../data/clean/jsonl.ts";

interface RawSpan {
  start: number;
  end: number;
  attributes?: Record<string, string>;
}

/** Builds `content.text` piece by piece and records annotation spans over it. */
class PaperBuilder {
  text = "";
  readonly spans: Record<string, RawSpan[]> = {};

  /** Appends `s`, annotating it with each [type, attributes] given; returns its span. */
  add(s: string, ...types: [string, Record<string, string>?][]): RawSpan {
    const start = this.text.length;
    this.text += s;
    for (const [type, attributes] of types) this.mark(type, start, this.text.length, attributes);
    return { start, end: this.text.length };
  }

  mark(type: string, start: number, end: number, attributes?: Record<string, string>): void {
    (this.spans[type] ??= []).push(attributes ? { attributes, end, start } : { end, start });
  }

  /** `content.annotations` as S2ORC stores it: every value a JSON-encoded string (or null). */
  annotations(): Record<string, string | null> {
    const out: Record<string, string | null> = { publisher: null, venue: null };
    for (const [k, v] of Object.entries(this.spans)) out[k] = JSON.stringify(v);
    return out;
  }
}

function buildPaper(): PaperBuilder {
  const p = new PaperBuilder();
  p.add("\n");
  p.add("Aspirin for secondary prevention", ["title"]);
  p.add("\n");
  const authors = p.add("Jane Doe", ["author"]);
  p.mark("authorfirstname", authors.start, authors.start + 4);
  p.mark("authorlastname", authors.start + 5, authors.end);
  p.add("\n");
  p.add("Department of Cardiology, Lausanne", ["authoraffiliation"]);
  p.add("\nAbstract\n");
  p.add("Aspirin lowers recurrent events in patients with prior infarction.", ["abstract"]);
  p.add("\n1 ");
  p.add("Introduction", ["sectionheader", { n: "1" }]);
  p.add("\n");
  const para1 = p.text.length;
  p.add("Cardiovascular disease is the leading cause of death (");
  p.add("Smith et al., 2019", ["bibref", { ref_id: "b0" }]);
  p.add("). Outcomes are shown in ");
  p.add("Fig. 1", ["figureref", { ref_id: "fig_0" }]);
  p.add(" and were confirmed elsewhere ");
  p.add("[7]", ["bibref"]); // unresolved citation: removed
  p.add(".");
  p.mark("paragraph", para1, p.text.length);
  p.add("\n2 ");
  p.add("METHODS", ["sectionheader", { n: "2" }]);
  p.add("\n2.1 ");
  p.add("Dose model", ["sectionheader", { n: "2.1" }]);
  p.add("\n");
  p.add("The dose follows", ["paragraph"]);
  p.add("\n");
  p.add("D = k \\cdot w (1)", ["formula", { id: "formula_0" }]);
  p.add("\n");
  p.add("where w is the body weight, see https://example.org/dose.", ["paragraph"]);
  p.add("\n");
  p.add("References", ["sectionheader"]);
  p.add("\n");
  const bib0 = p.text.length;
  p.add("Smith J, Brown K. ");
  p.add(
    "Aspirin in the elderly: a randomized trial of low dose aspirin for primary prevention",
    ["bibtitle"],
  );
  p.add(". N Engl J Med. 2019.");
  p.mark("bibentry", bib0, p.text.length, { id: "b0" });
  p.mark("bibauthor", bib0, bib0 + 7);
  p.mark("bibauthor", bib0 + 9, bib0 + 16);
  p.add("\n");
  const bib1 = p.text.length;
  p.add("Unrelated bibliography entry about statins and cholesterol. Lancet. 2001.");
  p.mark("bibentry", bib1, p.text.length, { id: "b1" });
  p.add("\n");
  const fig = p.text.length;
  p.add("Figure 1: ");
  p.add("Kaplan-Meier curves of recurrent infarction by treatment arm. Aspirin reduced events.", [
    "figurecaption",
  ]);
  p.mark("figure", fig, p.text.length, { id: "fig_0" });
  return p;
}

const EXPECTED = [
  "Aspirin for secondary prevention",
  "",
  "Aspirin lowers recurrent events in patients with prior infarction.",
  "",
  "# Introduction",
  "",
  "Cardiovascular disease is the leading cause of death [bib_ref] Aspirin in the elderly: a randomized trial " +
  "of low dose aspirin for..., Smith [/bib_ref]. Outcomes are shown in [fig_ref] Figure 1: Kaplan-Meier " +
  "curves of recurrent infarction by treatment arm [/fig_ref] and were confirmed elsewhere.",
  "",
  "# Methods",
  "",
  "## Dose model",
  "",
  "The dose follows",
  "",
  "[formula] D = k \\cdot w (1) [/formula]",
  "",
  "where w is the body weight, see.",
  "",
  "[fig] Figure 1: Kaplan-Meier curves of recurrent infarction by treatment arm. Aspirin reduced events. [/fig]",
].join("\n");

Deno.test("S2ORC paper → markdown: title, abstract, headers by n, bib/fig refs, formula, figure; no bibliography", () => {
  const p = buildPaper();
  const md = s2orcToMarkdown(p.text, p.annotations(), "s2orc.jsonl", 1);
  assert.equal(md, EXPECTED);
  for (
    const absent of ["Jane Doe", "Lausanne", "References", "Unrelated bibliography", "N Engl J Med", "[7]"]
  ) {
    assert.ok(!md.includes(absent), `'${absent}' must not appear`);
  }
});

Deno.test("S2ORC: bibauthorlastname preferred, missing bib title drops the citation, tables use [table]", () => {
  const p = new PaperBuilder();
  p.add("Dr A. Author, University Hospital", ["paragraph"], ["authoraffiliation"]); // mis-annotated header
  p.add("\n");
  p.add("Body", ["sectionheader", { n: "1" }]);
  p.add("\n");
  const para = p.text.length;
  p.add("Known ");
  p.add("[1]", ["bibref", { ref_id: "b0" }]);
  p.add(" and untitled ");
  p.add("[2]", ["bibref", { ref_id: "b1" }]);
  p.add(" results in ");
  p.add("Table 2", ["tableref", { ref_id: "tab_1" }]);
  p.add(".");
  p.mark("paragraph", para, p.text.length);
  p.add("\n");
  const b0 = p.text.length;
  p.add("van der Berg A. Short title. 2020.");
  p.mark("bibentry", b0, p.text.length, { id: "b0" });
  p.mark("bibauthor", b0, b0 + 15);
  p.mark("bibauthorlastname", b0, b0 + 13);
  p.mark("bibtitle", b0 + 16, b0 + 27);
  p.add("\n");
  const b1 = p.text.length;
  p.add("Anonymous. 1999.");
  p.mark("bibentry", b1, p.text.length, { id: "b1" });
  p.add("\n");
  const t = p.text.length;
  p.add("Table 2. ");
  p.add("Baseline characteristics", ["figurecaption"]);
  p.mark("figure", t, p.text.length, { id: "tab_1" });
  assert.equal(
    s2orcToMarkdown(p.text, p.annotations(), "s2orc.jsonl", 1, "Given title"),
    "Given title\n\n# Body\n\nKnown [bib_ref] Short title, van der Berg [/bib_ref] and untitled results in " +
      "[fig_ref] Table 2: Baseline characteristics [/fig_ref].\n\n[table] Table 2: Baseline characteristics [/table]",
  );
});

Deno.test("S2ORC annotations: JSON-encoded strings decoded, null empty, garbage is an error naming the field", () => {
  const a = parseAnnotations({ title: '[{"start":"0","end":"5"}]', table: null }, "p.jsonl", 3);
  assert.deepEqual(a.title, [{ start: 0, end: 5, attributes: undefined }], "string offsets become numbers");
  assert.deepEqual(a.table, []);
  assert.throws(
    () => parseAnnotations({ bibref: "[{not json" }, "p.jsonl", 3),
    (e: unknown) => e instanceof JsonlError && /p\.jsonl:3: 'content\.annotations\.bibref'/.test(e.message),
  );
});

Deno.test("paper cleaner: content dropped from output, corpusid dedup, empty text, missing content", () => {
  const p = buildPaper();
  const cleaner = createPaperCleaner({ language: null, minWords: 5 }, null);
  const record = {
    corpusid: 254640939,
    externalids: { pubmedcentral: "9798118" },
    content: { source: { pdfsha: "b57a" }, text: p.text, annotations: p.annotations() },
  };
  const out = cleaner.clean(record, "s2orc.jsonl", 1);
  assert.deepEqual(out, { corpusid: 254640939, externalids: { pubmedcentral: "9798118" }, text: EXPECTED });
  assert.equal(cleaner.clean({ ...record, corpusid: "254640939" }, "s2orc.jsonl", 2), "duplicate_id");
  assert.equal(
    cleaner.clean({ corpusid: 5, content: { text: null, annotations: null } }, "s2orc.jsonl", 3),
    "empty",
  );
  assert.throws(
    () => cleaner.clean({ corpusid: 6 }, "s2orc.jsonl", 4),
    /s2orc\.jsonl:4: missing object field 'content'/,
  );
  assert.throws(
    () => cleaner.clean({ corpusid: 7, content: { annotations: {} } }, "s2orc.jsonl", 5),
    /s2orc\.jsonl:5: missing string field 'content\.text'/,
  );
});
