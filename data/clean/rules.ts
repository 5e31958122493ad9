/**
 * Common text-cleaning rules of the GAP-Replay pipeline (after Meditron's `clean()`): each rule is a pure
 * string → string function, and {@linkcode cleanText} applies them in order.
 *
 * Rules are deliberately narrower than Meditron's regular expressions where those destroy medical text:
 * `<…>` is removed only when it looks like a markup tag (so `p < 0.05 and n > 3` survives) and `[…]` only
 * when it is a numeric or author–year citation (so `[fig]`-style tokens and `[see Table 2]` survive).
 *
 * @module
 */

// A superscript citation follows a word of 3+ letters or punctuation (not a unit or a number: m², 10⁹).
const SUP_CITATION =
  /(?<=\p{L}{3}|[.,;:)\]])[ \t]*<sup>\s*\[?\d+[a-z]?(?:\s*[-–—,;]\s*\d+[a-z]?)*\]?\s*<\/sup>/giu;
const TAG = /<!--[\s\S]*?-->|<\/?[A-Za-z][A-Za-z0-9:-]*(?:\s+[^<>]*?)?\s*\/?>/g;
const IMAGE = /!\[[^\[\]\n]*\]\([^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:\s+"[^"\n]*")?\)/g;
const LINK = /\[([^\[\]\n]*)\]\([^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:\s+"[^"\n]*")?\)/g;
const URL =
  /[ \t]*(?:<(?:https?|ftp):\/\/[^\s<>]*>|\b(?:(?:https?|ftp):\/\/|www\.)[^\s<>()\[\]{}"'`]*[^\s<>()\[\]{}"'`.,;:!?])/gi;
// Brackets left empty (or holding only a lead-in such as "see" or "available at:") by URL removal.
const EMPTY_BRACKETS =
  /[ \t]*(?:\(\s*(?:(?:see|available|online|at|from|accessed|url|link|website|here)\b[\s:]*)*\)|\[\s*\])/gi;
const YEAR = String.raw`(?:1[89]\d\d|20\d\d)[a-z]?`;
const NUMERIC_CITATION = String.raw`\d+[a-z]?(?:\s*[-–—,;]\s*\d+[a-z]?)*`;
const AUTHOR_CITATION = String.raw`[^\[\]\n]*?(?:et al\.?|${YEAR})[^\[\]\n]*?`;
const CITATION = new RegExp(String.raw`[ \t]*\[\s*(?:${NUMERIC_CITATION}|${AUTHOR_CITATION})\s*\]`, "g");
const BULLET = /^([ \t]*)(?:[*+][ \t]+|[•▪■◦‣●○□◆◇∙·][ \t]*)/gm;
const GLYPHS =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u200B-\u200D\u2060\uFEFF\uFFFD\uE000-\uF8FF]/g;
const STRAY = /[•▪■□◆◇]/g;
const HEADING = /^(#{1,6})[ \t]+(?=\S)/;
const LETTER = /\p{L}/u;

/**
 * Removes URLs (`http(s)://…`, `ftp://…`, `www.…`, `<https://…>`) with the spaces before them, keeping
 * sentence punctuation after them, and the brackets left empty by the removal (or holding only a lead-in
 * such as "see" or "available at:").
 *
 * @example
 * ```ts
 * import { removeUrls } from "./rules.ts";
 * console.log(removeUrls("See NICE (https://www.nice.org.uk/guidance/ng28).")); // "See NICE."
 * ```
 */
export function removeUrls(text: string): string {
  const t = text.replace(URL, "");
  return t.length === text.length ? t : t.replace(EMPTY_BRACKETS, "");
}

/**
 * Removes markup tags and comments (`<b>`, `</a>`, `<br/>`, `<!-- … -->`) but not comparison signs;
 * superscript citation numbers (`<sup>1,2</sup>`) go with their tags.
 *
 * @example
 * ```ts
 * import { removeTags } from "./rules.ts";
 * console.log(removeTags("HbA1c <b>below</b> 7% (p < 0.05)")); // "HbA1c below 7% (p < 0.05)"
 * ```
 */
export function removeTags(text: string): string {
  return text.replace(SUP_CITATION, "").replace(TAG, "");
}

/**
 * Replaces markdown links by their text and removes markdown images.
 *
 * @example
 * ```ts
 * import { removeMarkdownLinks } from "./rules.ts";
 * console.log(removeMarkdownLinks("Read [the guideline](https://x.org/g) ![logo](a.png)")); // "Read the guideline "
 * ```
 */
export function removeMarkdownLinks(text: string): string {
  return text.replace(IMAGE, "").replace(LINK, "$1");
}

/**
 * Removes bracketed citations — numeric (`[1]`, `[2-4]`, `[1, 3–5]`) and author–year (`[Smith et al., 2019]`)
 * — with the spaces before them.
 *
 * @example
 * ```ts
 * import { removeCitations } from "./rules.ts";
 * console.log(removeCitations("Statins reduce risk [1, 3-5] [Smith et al., 2019].")); // "Statins reduce risk."
 * ```
 */
export function removeCitations(text: string): string {
  return text.replace(CITATION, "");
}

/**
 * Reference markup removal: tags, markdown links (text kept) and bracketed citations.
 *
 * @example
 * ```ts
 * import { removeReferenceMarkup } from "./rules.ts";
 * console.log(removeReferenceMarkup("<p>Use [ACE inhibitors](/ace) first [12].</p>")); // "Use ACE inhibitors first."
 * ```
 */
export function removeReferenceMarkup(text: string): string {
  return removeCitations(removeMarkdownLinks(removeTags(text)));
}

/**
 * Normalises list bullets at line start (`*`, `+` followed by a space; `•`, `▪`, `■`, `◦`, `●`, … with or
 * without one) to `- `, keeping the indentation.
 *
 * @example
 * ```ts
 * import { normalizeBullets } from "./rules.ts";
 * console.log(normalizeBullets("* one\n•two\n  ▪ three\n+ four")); // "- one\n- two\n  - three\n- four"
 * ```
 */
export function normalizeBullets(text: string): string {
  return text.replace(BULLET, "$1- ");
}

/**
 * Strips stray glyphs: control characters (except tab and newline), U+FFFD replacement characters,
 * zero-width characters and BOMs, soft hyphens, private-use glyphs, and leftover bullet/box glyphs
 * inside lines. Carriage returns become newlines first, and no-break spaces plain spaces.
 *
 * @example
 * ```ts
 * import { stripGlyphs } from "./rules.ts";
 * console.log(stripGlyphs("a\u200Bb\uFFFDc\u0007 ■ d")); // "abc  d"
 * ```
 */
export function stripGlyphs(text: string): string {
  return text.replace(/\r\n?/g, "\n").replace(/[\u00A0\u202F]/g, " ").replace(GLYPHS, "").replace(STRAY, "");
}

/**
 * Normalises markdown heading levels: the smallest level present becomes `#`, the others shift by the same
 * amount, and nothing is deeper than `maxLevel` (default 3).
 *
 * @example
 * ```ts
 * import { normalizeHeadings } from "./rules.ts";
 * console.log(normalizeHeadings("## A\n### B\n###### C")); // "# A\n## B\n### C"
 * ```
 */
export function normalizeHeadings(text: string, maxLevel = 3): string {
  const lines = text.split("\n");
  let min = 7;
  for (const line of lines) {
    const m = HEADING.exec(line);
    if (m && m[1].length < min) min = m[1].length;
  }
  if (min === 7) return text;
  for (let i = 0; i < lines.length; i++) {
    const m = HEADING.exec(lines[i]);
    if (!m) continue;
    const level = Math.min(m[1].length - min + 1, maxLevel);
    lines[i] = "#".repeat(level) + " " + lines[i].slice(m[0].length);
  }
  return lines.join("\n");
}

/**
 * Drops non-blank lines that contain no letter (page numbers, table rules, lone symbols); blank lines stay.
 *
 * @example
 * ```ts
 * import { dropLinesWithoutLetters } from "./rules.ts";
 * console.log(dropLinesWithoutLetters("Dose\n| --- |\n12\n\nEnd")); // "Dose\n\nEnd"
 * ```
 */
export function dropLinesWithoutLetters(text: string): string {
  return text.split("\n").filter((line) => line.trim() === "" || LETTER.test(line)).join("\n");
}

/**
 * Collapses whitespace: runs of spaces and tabs inside a line become one space, lines are trimmed at the
 * end, runs of blank lines become one blank line, and the text is trimmed.
 *
 * @example
 * ```ts
 * import { collapseBlankLines } from "./rules.ts";
 * console.log(JSON.stringify(collapseBlankLines("a  b \n\n\n\nc\n"))); // "a b\n\nc"
 * ```
 */
export function collapseBlankLines(text: string): string {
  const out: string[] = [];
  let blank = false;
  for (const raw of text.split("\n")) {
    const indent = /^[ \t]*/.exec(raw)![0];
    const line = indent + raw.slice(indent.length).replace(/[ \t]+/g, " ").trimEnd();
    if (line.trim() === "") {
      blank = out.length > 0;
      continue;
    }
    if (blank) out.push("");
    blank = false;
    out.push(line);
  }
  return out.join("\n");
}

/**
 * Puts a blank line before every heading that is not the first line.
 *
 * @example
 * ```ts
 * import { blankLineBeforeHeadings } from "./rules.ts";
 * console.log(JSON.stringify(blankLineBeforeHeadings("Intro\n# Dosing\nText"))); // "Intro\n\n# Dosing\nText"
 * ```
 */
export function blankLineBeforeHeadings(text: string): string {
  return text.replace(/([^\n])\n(#{1,6}[ \t])/g, "$1\n\n$2");
}

/**
 * All common rules in order: bullets, stray glyphs, reference markup, URLs, heading levels, letterless
 * lines, whitespace and blank lines, blank line before headings.
 *
 * @example
 * ```ts
 * import { cleanText } from "./rules.ts";
 * const raw = "## Management\n• Give [aspirin](https://x.org) 75 mg [3].\n\n\n---\n### Dose\n12";
 * console.log(cleanText(raw)); // "# Management\n- Give aspirin 75 mg.\n\n## Dose"
 * ```
 */
export function cleanText(text: string): string {
  let t = stripGlyphs(normalizeBullets(text));
  t = removeTags(t);
  t = removeMarkdownLinks(t);
  t = removeUrls(t);
  t = removeCitations(t);
  t = normalizeHeadings(t);
  t = dropLinesWithoutLetters(t);
  t = collapseBlankLines(t);
  return blankLineBeforeHeadings(t);
}
