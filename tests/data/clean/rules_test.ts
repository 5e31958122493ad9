// Common cleaning rules, one at a time: input → expected output.
import assert from "node:assert/strict";
import {
  blankLineBeforeHeadings,
  cleanText,
  collapseBlankLines,
  dropLinesWithoutLetters,
  normalizeBullets,
  normalizeHeadings,
  removeCitations,
  removeMarkdownLinks,
  removeReferenceMarkup,
  removeTags,
  removeUrls,
  stripGlyphs,
} from "../../../data/clean/rules.ts";

Deno.test("removeUrls: schemes, www, autolinks; sentence punctuation and surrounding text kept", () => {
  assert.equal(removeUrls("See NICE (https://www.nice.org.uk/guidance/ng28)."), "See NICE.");
  assert.equal(removeUrls("Visit www.cdc.gov/flu, then rest."), "Visit, then rest.");
  assert.equal(
    removeUrls("Data at ftp://ftp.ncbi.nlm.nih.gov/pub/x.gz and <http://a.org/b?c=1&d=2>."),
    "Data at and.",
  );
  assert.equal(removeUrls("http://example.org/path?q=1#frag"), "");
  assert.equal(removeUrls("Full text (available at: https://who.int/x)."), "Full text.");
  assert.equal(removeUrls("No link here (n = 12)."), "No link here (n = 12).", "unrelated brackets stay");
});

Deno.test("removeTags: markup tags and comments go, comparison signs stay", () => {
  assert.equal(removeTags("HbA1c <b>below</b> 7%<br/><!-- note -->"), "HbA1c below 7%");
  assert.equal(removeTags('<a href="x.html" class="ref">link</a>'), "link");
  assert.equal(removeTags("events <sup>1,2</sup>. Risk.<sup>3</sup>"), "events. Risk.", "citation numbers");
  assert.equal(
    removeTags("1.73 m<sup>2</sup> and 10<sup>9</sup>/L"),
    "1.73 m2 and 109/L",
    "units and powers keep digits",
  );
  assert.equal(removeTags("p < 0.05 and n > 3; eGFR <30 and >15"), "p < 0.05 and n > 3; eGFR <30 and >15");
});

Deno.test("removeMarkdownLinks: links keep their text, images go", () => {
  assert.equal(removeMarkdownLinks("Read [the guideline](https://x.org/g) now"), "Read the guideline now");
  assert.equal(
    removeMarkdownLinks("[wiki](https://en.wikipedia.org/wiki/A_(b)) x"),
    "wiki x",
    "parentheses in URL",
  );
  assert.equal(removeMarkdownLinks('![logo](img/a.png "Logo") text'), " text");
  assert.equal(removeMarkdownLinks("[not a link] (space)"), "[not a link] (space)");
});

Deno.test("removeCitations: numeric and author-year citations go, other brackets stay", () => {
  assert.equal(removeCitations("Statins reduce risk [1]."), "Statins reduce risk.");
  assert.equal(removeCitations("Shown before [2-4], [1, 3–5] and [12;14]."), "Shown before, and.");
  assert.equal(removeCitations("As reported [Smith et al., 2019] and [Jones 2020a]."), "As reported and.");
  assert.equal(
    removeCitations("See [Table 2] and [fig] tokens [bib_ref]."),
    "See [Table 2] and [fig] tokens [bib_ref].",
  );
  assert.equal(
    removeReferenceMarkup("<p>Use [ACE inhibitors](/ace) first [12].</p>"),
    "Use ACE inhibitors first.",
  );
});

Deno.test("normalizeBullets: * • ▪ ■ + at line start become '- ', emphasis untouched", () => {
  assert.equal(
    normalizeBullets("* one\n•two\n  ▪ three\n+ four\n■ five\n◦ six"),
    "- one\n- two\n  - three\n- four\n- five\n- six",
  );
  assert.equal(
    normalizeBullets("**bold** stays\n*emph* stays\na * b + c"),
    "**bold** stays\n*emph* stays\na * b + c",
  );
});

Deno.test("stripGlyphs: control, replacement, zero-width, soft hyphen, private-use and stray box glyphs", () => {
  assert.equal(stripGlyphs("a\u200Bb\uFFFDc\u0007d\u00ADe\uF0B7f\uFEFF"), "abcdef");
  assert.equal(stripGlyphs("dose ■ daily ◆"), "dose  daily ");
  assert.equal(
    stripGlyphs("line\r\nnext\rlast\u00A0x\ttab"),
    "line\nnext\nlast x\ttab",
    "CR → LF, NBSP → space",
  );
});

Deno.test("normalizeHeadings: smallest level → #, relative levels kept, at most ###", () => {
  assert.equal(normalizeHeadings("## A\ntext\n### B\n###### C"), "# A\ntext\n## B\n### C");
  assert.equal(normalizeHeadings("#### Only"), "# Only");
  assert.equal(normalizeHeadings("# A\n## B"), "# A\n## B");
  assert.equal(normalizeHeadings("#hashtag and C# code"), "#hashtag and C# code", "not headings");
  assert.equal(normalizeHeadings("## A\n##### E", 2), "# A\n## E", "configurable cap");
});

Deno.test("dropLinesWithoutLetters: letterless lines go, blank lines and any-script letters stay", () => {
  assert.equal(dropLinesWithoutLetters("Dose\n| --- | --- |\n12.5\n\n***\nÉté\n指南"), "Dose\n\nÉté\n指南");
});

Deno.test("collapseBlankLines: runs of blank lines → one, inner spaces collapsed, indentation kept", () => {
  assert.equal(collapseBlankLines("\n\na  b \n\n\n\nc\n   \n  - d   e\n\n"), "a b\n\nc\n\n  - d e");
});

Deno.test("blankLineBeforeHeadings: a blank line before every heading but the first line", () => {
  assert.equal(
    blankLineBeforeHeadings("# Top\nIntro\n# Dosing\nText\n\n## Kept"),
    "# Top\nIntro\n\n# Dosing\nText\n\n## Kept",
  );
});

Deno.test("cleanText: all rules together on a scraped guideline fragment", () => {
  const raw = [
    "## Management of hypertension",
    "",
    "• Offer an [ACE inhibitor](https://bnf.nice.org.uk/ace) to adults under 55 [3, 4].",
    "* Measure <b>blood pressure</b> at every visit (see https://www.nice.org.uk/ng136).",
    "",
    "",
    "| --- | --- |",
    "2",
    "### Follow-up\u200B",
    "Review annually [Smith et al., 2019].",
  ].join("\n");
  assert.equal(
    cleanText(raw),
    [
      "# Management of hypertension",
      "",
      "- Offer an ACE inhibitor to adults under 55.",
      "- Measure blood pressure at every visit.",
      "",
      "## Follow-up",
      "Review annually.",
    ].join("\n"),
  );
});
