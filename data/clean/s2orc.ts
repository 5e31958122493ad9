/**
 * S2ORC full text → markdown, as Meditron formatted PubMed Central papers. An S2ORC record holds
 * `content.text` and `content.annotations`, whose values are JSON-ENCODED STRINGS of span lists
 * `[{"start": …, "end": …, "attributes": {…}}]` (or `null`) for `title`, `abstract`, `sectionheader`
 * (`n`: "2.1"), `paragraph`, `bibref` (`ref_id` → a `bibentry`'s `id`), `bibentry`, `bibtitle`, `bibauthor`,
 * `bibauthorlastname`, `figureref`/`tableref` (`ref_id` → a `figure`/`table` `id`), `figure`, `figurecaption`,
 * `table`, `formula`, `author`, ….
 *
 * The markdown is the title, the abstract, `#`/`##`/`###` section headers (level from the dots of `n`),
 * paragraphs with citations as ` [bib_ref] {cited title ≤ 12 words}, {first author surname} [/bib_ref] `
 * and figure/table references as ` [fig_ref] {label}: {caption ≤ 12 words} [/fig_ref] `, figure and table
 * blocks as `[fig] … [/fig]` / `[table] … [/table]`, formulas as `[formula] … [/formula]`. Only annotated
 * blocks are emitted, so the author block, page furniture and the bibliography never appear; headers left
 * without content (e.g. "References") are dropped.
 *
 * @module
 */
import { JsonlError } from "./jsonl.ts";
import { removeUrls, stripGlyphs } from "./rules.ts";

/** One annotated span of `content.text`. */
export interface Span {
  /** Start offset (UTF-16 code units, inclusive). */
  start: number;
  /** End offset (exclusive). */
  end: number;
  /** Span attributes (`id`, `ref_id`, `n`, …). */
  attributes?: Record<string, unknown>;
}

/** Decoded annotations by type. */
export type Annotations = Record<string, Span[]>;

/** Options of {@linkcode s2orcToMarkdown}. */
export interface S2orcOptions {
  /** Words kept of a cited title and of a figure caption in a reference (default 12). */
  maxRefWords?: number;
}

/** Section names that are top-level (`#`) when a header has no number (Meditron's list). */
export const MAIN_SECTION_HEADERS: readonly string[] = [
  "abstract",
  "introduction",
  "background",
  "related",
  "method",
  "material",
  "result",
  "analysis",
  "discussion",
  "conclusion",
  "contribution",
  "statement",
  "declaration",
  "strength",
  "limitation",
  "future research",
  "funding",
  "disclosure",
  "acknowledgment",
  "acknowledgement",
  "ethical",
  "tables",
  "figures",
  "appendix",
];

function toSpan(value: unknown): Span | null {
  if (typeof value !== "object" || value === null) return null;
  const o = value as Record<string, unknown>;
  const start = Number(o.start), end = Number(o.end);
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return null;
  const attributes = typeof o.attributes === "object" && o.attributes !== null
    ? o.attributes as Record<string, unknown>
    : undefined;
  return { start, end, attributes };
}

/**
 * Decodes `content.annotations`: each value a JSON-encoded span list (an already decoded list is accepted,
 * `null` is empty). A value that is neither is a {@linkcode JsonlError} naming the annotation.
 *
 * @example
 * ```ts
 * import { parseAnnotations } from "./s2orc.ts";
 * const a = parseAnnotations({ title: '[{"start":0,"end":5}]', table: null }, "p.jsonl", 1);
 * console.log(a.title[0].end, a.table.length); // 5 0
 * ```
 */
export function parseAnnotations(raw: unknown, file: string, line: number): Annotations {
  const out: Annotations = {};
  if (raw === null || raw === undefined) return out;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new JsonlError(file, line, "'content.annotations' is not an object");
  }
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    let list: unknown = value;
    if (typeof value === "string") {
      try {
        list = JSON.parse(value);
      } catch {
        throw new JsonlError(file, line, `'content.annotations.${key}' is not a JSON-encoded span list`);
      }
    }
    if (list === null) {
      out[key] = [];
      continue;
    }
    if (!Array.isArray(list)) {
      throw new JsonlError(file, line, `'content.annotations.${key}' is not a JSON-encoded span list`);
    }
    out[key] = list.map(toSpan).filter((s): s is Span => s !== null).sort((a, b) => a.start - b.start);
  }
  return out;
}

const oneLine = (s: string): string => s.replace(/\s+/g, " ").trim();

function truncateWords(text: string, max: number): string {
  const words = oneLine(text).split(" ");
  return words.length > max ? words.slice(0, max).join(" ") + "..." : words.join(" ");
}

/** First sentence of a caption (Meditron's summary), at most `max` words. */
function summarizeCaption(caption: string, max: number): string {
  const c = oneLine(caption);
  const first = c.length > 20 ? c.split(/(?<=[a-z0-9)\]])\.\s|[;:]\s/i)[0] : c;
  return truncateWords(first.replace(/[.\s]+$/, ""), max);
}

function within(spans: readonly Span[] | undefined, outer: Span): Span | undefined {
  return spans?.find((s) => s.start >= outer.start && s.end <= outer.end);
}

function overlaps(a: Span, b: Span): boolean {
  return a.start < b.end && b.start < a.end;
}

function attr(span: Span, key: string): string | undefined {
  const v = span.attributes?.[key];
  return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
}

interface Figure {
  kind: "fig" | "table";
  label: string;
  caption: string;
}

/** A rendered block before assembly (a float is a figure or table: it does not keep a header). */
interface Block {
  kind: "header" | "text" | "float";
  level: number;
  text: string;
}

type InlineKind = "bibref" | "figureref" | "tableref" | "formula";

interface Inline extends Span {
  kind: InlineKind;
}

/** Renders an S2ORC record's annotated content as markdown (see the module doc). */
class PaperRenderer {
  readonly #text: string;
  readonly #ann: Annotations;
  readonly #maxWords: number;
  readonly #bibs = new Map<string, string | null>();
  readonly #figs = new Map<string, Figure>();
  readonly #inline: Inline[];

  constructor(text: string, ann: Annotations, options: S2orcOptions) {
    this.#text = text;
    this.#ann = ann;
    this.#maxWords = options.maxRefWords ?? 12;
    for (const [type, kind] of [["figure", "fig"], ["table", "table"]] as const) {
      for (const span of ann[type] ?? []) {
        const id = attr(span, "id");
        if (id === undefined || this.#figs.has(id)) continue;
        this.#figs.set(id, this.#figure(span, id.toLowerCase().startsWith("tab") ? "table" : kind));
      }
    }
    const inline: Inline[] = [];
    for (const kind of ["bibref", "figureref", "tableref", "formula"] as const) {
      for (const s of ann[kind] ?? []) inline.push({ ...s, kind });
    }
    this.#inline = inline.sort((a, b) => a.start - b.start || b.end - a.end);
  }

  #slice(s: Span): string {
    return this.#text.slice(s.start, s.end);
  }

  #figure(span: Span, kind: "fig" | "table"): Figure {
    const cap = within(this.#ann.figurecaption, span) ?? within(this.#ann.tablecaption, span);
    let label = cap ? oneLine(this.#text.slice(span.start, cap.start)) : "";
    let caption = oneLine(cap ? this.#slice(cap) : this.#slice(span));
    label = label.replace(/^Fig\.?(?=\s|\d)/i, "Figure").replace(/^Tab\.?(?=\s|\d)/i, "Table");
    label = label.replace(/[\s:.|-]+$/, "");
    if (label && caption.toLowerCase().startsWith(label.toLowerCase())) {
      caption = caption.slice(label.length).replace(/^[\s:.|-]+/, "");
    }
    return { kind, label, caption };
  }

  /** `{title ≤ n words}, {surname}` of a bibliography entry, or null when it has no title. */
  #bib(id: string): string | null {
    if (this.#bibs.has(id)) return this.#bibs.get(id)!;
    let out: string | null = null;
    const entry = (this.#ann.bibentry ?? []).find((b) => attr(b, "id") === id);
    if (entry) {
      const title = within(this.#ann.bibtitle, entry);
      if (title) {
        out = truncateWords(this.#slice(title).replace(/[.\s]+$/, ""), this.#maxWords);
        const last = within(this.#ann.bibauthorlastname, entry);
        const author = within(this.#ann.bibauthor, entry);
        const surname = last
          ? oneLine(this.#slice(last))
          : author
          ? oneLine(this.#slice(author)).split(" ").filter((w) => /\p{L}{2}/u.test(w)).at(-1) ?? ""
          : "";
        if (surname) out += `, ${surname.replace(/[,.;]+$/, "")}`;
      }
    }
    this.#bibs.set(id, out);
    return out;
  }

  #renderInline(span: Inline): string {
    if (span.kind === "formula") return ` [formula] ${oneLine(this.#slice(span))} [/formula] `;
    const ref = attr(span, "ref_id");
    if (span.kind === "bibref") {
      const bib = ref === undefined ? null : this.#bib(ref);
      return bib ? ` [bib_ref] ${bib} [/bib_ref] ` : " ";
    }
    const fig = ref === undefined ? undefined : this.#figs.get(ref);
    const label = fig?.label || oneLine(this.#slice(span));
    const caption = fig?.caption ? summarizeCaption(fig.caption, this.#maxWords) : "";
    return ` [fig_ref] ${caption ? `${label}: ${caption}` : label} [/fig_ref] `;
  }

  #plain(s: string): string {
    return removeUrls(stripGlyphs(s)).replace(/\s+/g, " ");
  }

  /** Renders `[start, end)` with its inline spans replaced. */
  paragraph(block: Span): string {
    const spans: Inline[] = [];
    let last = block.start;
    for (const s of this.#inline) {
      if (s.start < last || s.start < block.start) continue;
      if (s.start >= block.end) break;
      if (s.end > block.end) continue;
      spans.push(s);
      last = s.end;
    }
    let out = "";
    let pos = block.start;
    let i = 0;
    while (i < spans.length) {
      // A run of references separated only by commas/semicolons/"and", possibly wrapped in (…) or […].
      let j = i;
      while (
        j + 1 < spans.length && spans[j].kind !== "formula" && spans[j + 1].kind !== "formula" &&
        /^[\s,;]*(?:and)?[\s,;]*$/.test(this.#text.slice(spans[j].end, spans[j + 1].start))
      ) j++;
      let before = this.#text.slice(pos, spans[i].start);
      let end = spans[j].end;
      if (spans[i].kind !== "formula") {
        const open = /[([]\s*$/.exec(before);
        const close = /^\s*[)\]]/.exec(this.#text.slice(end, block.end));
        if (open && close) {
          before = before.slice(0, open.index);
          end += close[0].length;
        }
      }
      out += this.#plain(before);
      for (let k = i; k <= j; k++) out += this.#renderInline(spans[k]);
      pos = end;
      i = j + 1;
    }
    out += this.#plain(this.#text.slice(pos, block.end));
    return out.replace(/ {2,}/g, " ").replace(/ (?=[.,;:!?](?:\s|$))/g, "").trim();
  }

  header(span: Span): Block | null {
    let text = oneLine(stripGlyphs(this.#slice(span)));
    if (!/\p{L}/u.test(text)) return null;
    if (text === text.toUpperCase()) text = text[0] + text.slice(1).toLowerCase();
    const n = attr(span, "n")?.replace(/\.+$/, "");
    let level: number;
    if (n) level = Math.min(n.split(".").filter((p) => p !== "").length, 3);
    else {
      const lower = text.toLowerCase();
      level = text.split(" ").length <= 3 && MAIN_SECTION_HEADERS.some((h) => lower.includes(h)) ? 1 : 2;
    }
    return { kind: "header", level, text: `${"#".repeat(level)} ${text}` };
  }

  figureBlock(span: Span, id: string | undefined, kind: "fig" | "table"): string | null {
    const fig = (id !== undefined ? this.#figs.get(id) : undefined) ?? this.#figure(span, kind);
    const body = [fig.label, fig.caption].filter((s) => s !== "").join(": ");
    if (!body) return null;
    return `[${fig.kind}] ${body} [/${fig.kind}]`;
  }
}

/**
 * Builds the markdown of an S2ORC paper (see the module doc). `title` is the record's own title when it
 * has one; otherwise the first `title` annotation is used.
 *
 * @example
 * ```ts
 * import { s2orcToMarkdown } from "./s2orc.ts";
 * const text = "Aspirin\nAspirin helps.\nIntro\nIt works.";
 * const annotations = {
 *   title: '[{"start":0,"end":7}]',
 *   abstract: '[{"start":8,"end":22}]',
 *   sectionheader: '[{"start":23,"end":28,"attributes":{"n":"1"}}]',
 *   paragraph: '[{"start":29,"end":38}]',
 * };
 * console.log(s2orcToMarkdown(text, annotations, "p.jsonl", 1)); // "Aspirin\n\nAspirin helps.\n\n# Intro\n\nIt works."
 * ```
 */
export function s2orcToMarkdown(
  text: string,
  annotations: unknown,
  file: string,
  line: number,
  title?: string,
  options: S2orcOptions = {},
): string {
  const ann = parseAnnotations(annotations, file, line);
  const r = new PaperRenderer(text, ann, options);
  const titleText = oneLine(
    stripGlyphs(title ?? (ann.title?.[0] ? text.slice(ann.title[0].start, ann.title[0].end) : "")),
  );

  type Item = Span & { kind: "abstract" | "sectionheader" | "paragraph" | "formula" | "figure" | "table" };
  const items: Item[] = [];
  for (const kind of ["abstract", "sectionheader", "paragraph", "formula", "figure", "table"] as const) {
    for (const s of ann[kind] ?? []) items.push({ ...s, kind });
  }
  items.sort((a, b) => a.start - b.start || b.end - a.end);
  const bib = ann.bibentry ?? [];
  const authors = ["author", "authoraffiliation", "authorfirstname", "authorlastname"].flatMap((k) =>
    ann[k] ?? []
  );
  const figs = [...(ann.figure ?? []), ...(ann.table ?? [])];

  const blocks: Block[] = [];
  const seenFigures = new Set<string>();
  let covered = -1; // end of the last emitted text block
  for (const item of items) {
    if (item.end <= item.start) continue;
    if (bib.some((b) => overlaps(b, item))) continue; // bibliography
    if (authors.some((a) => overlaps(a, item))) continue; // author block
    if (item.kind === "figure" || item.kind === "table") {
      const id = attr(item, "id");
      const key = id ?? `${item.start}`;
      if (seenFigures.has(key)) continue;
      seenFigures.add(key);
      const fig = r.figureBlock(item, id, item.kind === "table" ? "table" : "fig");
      if (fig) blocks.push({ kind: "float", level: 0, text: fig });
      continue;
    }
    if (item.start < covered) continue; // inside an emitted block (inline formula, nested paragraph)
    if (figs.some((f) => item.start >= f.start && item.end <= f.end)) continue; // caption text
    if (item.kind === "sectionheader") {
      const h = r.header(item);
      if (h) blocks.push(h);
    } else if (item.kind === "formula") {
      const body = oneLine(text.slice(item.start, item.end));
      if (body) blocks.push({ kind: "text", level: 0, text: `[formula] ${body} [/formula]` });
    } else {
      const p = r.paragraph(item);
      if (/\p{L}/u.test(p)) blocks.push({ kind: "text", level: 0, text: p });
    }
    covered = item.end;
  }

  // Drop headers with no content before the next header of the same or a higher level.
  const kept = blocks.filter((b, i) => {
    if (b.kind !== "header") return true;
    for (let j = i + 1; j < blocks.length; j++) {
      if (blocks[j].kind === "text") return true;
      if (blocks[j].level <= b.level) return false;
    }
    return false;
  });
  const body = kept.map((b) => b.text).join("\n\n");
  if (!body) return "";
  return titleText ? `${titleText}\n\n${body}` : body;
}
