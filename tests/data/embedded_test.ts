import assert from "node:assert/strict";
import {
  type Condition,
  CONDITIONS,
  conditionsBySystem,
  DEFAULT_COPIES,
  DISCLAIMER,
  getCondition,
  mulberry32,
  renderCorpus,
  renderDocument,
  SYSTEM_INFO,
  SYSTEMS,
  TEMPLATE_NAMES,
  TEMPLATE_SOURCES,
  templateOf,
} from "../../data/embedded/mod.ts";

/** Signs of an unrendered placeholder or a stringified missing value. */
const FORBIDDEN: readonly RegExp[] = [/[{}]/, /\bundefined\b/, /\bNaN\b/, /\bnull\b/, /\[object /];

function bytes(texts: readonly string[]): number {
  const enc = new TextEncoder();
  return texts.reduce((n, t) => n + enc.encode(t).length, 0);
}

function stringFields(c: Condition): string[] {
  return [
    c.id,
    c.name,
    c.firstLineTest,
    c.firstLineTreatment,
    c.complication,
    ...c.presentation,
    ...c.keyFindings,
    ...(c.riskFactors ?? []),
  ];
}

Deno.test("knowledge base has at least 150 conditions", () => {
  assert.ok(CONDITIONS.length >= 150, `only ${CONDITIONS.length} conditions`);
});

Deno.test("knowledge base covers at least 10 systems with at least 8 conditions each", () => {
  for (const c of CONDITIONS) assert.ok(SYSTEMS.includes(c.system), `${c.id}: unknown system ${c.system}`);
  const wellCovered = SYSTEMS.filter((s) => conditionsBySystem(s).length >= 8);
  assert.ok(wellCovered.length >= 10, `only ${wellCovered.length} systems have >= 8 conditions`);
  for (const s of SYSTEMS) {
    assert.ok(SYSTEM_INFO[s].label.length > 0 && SYSTEM_INFO[s].specialty.length > 0, s);
  }
});

Deno.test("condition ids and names are unique; ids are slugs", () => {
  const ids = new Set(CONDITIONS.map((c) => c.id));
  assert.equal(ids.size, CONDITIONS.length);
  const names = new Set(CONDITIONS.map((c) => c.name.toLowerCase()));
  assert.equal(names.size, CONDITIONS.length);
  for (const c of CONDITIONS) assert.match(c.id, /^[a-z0-9]+(-[a-z0-9]+)*$/, c.id);
});

Deno.test("no condition has an empty or malformed field", () => {
  for (const c of CONDITIONS) {
    assert.ok(c.presentation.length > 0, `${c.id}: empty presentation`);
    assert.ok(c.keyFindings.length > 0, `${c.id}: empty keyFindings`);
    if (c.riskFactors !== undefined) assert.ok(c.riskFactors.length > 0, `${c.id}: empty riskFactors`);
    for (const f of stringFields(c)) {
      assert.equal(typeof f, "string");
      assert.ok(f.trim().length > 0, `${c.id}: empty string field`);
      assert.equal(f, f.trim(), `${c.id}: untrimmed "${f}"`);
      assert.ok(!f.endsWith("."), `${c.id}: phrase ends with a period: "${f}"`);
      for (const bad of FORBIDDEN) assert.ok(!bad.test(f), `${c.id}: "${f}" matches ${bad}`);
    }
  }
});

Deno.test("lookup helpers and disclaimer", () => {
  assert.equal(getCondition("asthma")?.name, "asthma");
  assert.equal(getCondition("no-such-condition"), undefined);
  assert.match(DISCLAIMER, /not medical advice/i);
  assert.match(DISCLAIMER, /demo/i);
});

Deno.test("mulberry32 is deterministic and in [0, 1)", () => {
  const a = mulberry32(123);
  const b = mulberry32(123);
  const c = mulberry32(124);
  const xs = Array.from({ length: 1000 }, () => a());
  const ys = Array.from({ length: 1000 }, () => b());
  const zs = Array.from({ length: 1000 }, () => c());
  assert.deepEqual(xs, ys);
  assert.notDeepEqual(xs, zs);
  for (const x of xs) assert.ok(x >= 0 && x < 1);
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

const corpus = renderCorpus();

Deno.test("renderCorpus is deterministic for a given seed", () => {
  assert.deepEqual(renderCorpus(), corpus);
  assert.deepEqual(renderCorpus({ seed: 99, copies: 1 }), renderCorpus({ seed: 99, copies: 1 }));
});

Deno.test("different seeds give a different order and phrasing", () => {
  const other = renderCorpus({ seed: 7 });
  assert.equal(other.length, corpus.length);
  assert.notDeepEqual(
    other.map((d) => d.id),
    corpus.map((d) => d.id),
  );
  const byId = new Map(other.map((d) => [d.id, d.text]));
  const changed = corpus.filter((d) => byId.get(d.id) !== d.text).length;
  assert.ok(changed > corpus.length / 2, `only ${changed} of ${corpus.length} documents changed`);
});

Deno.test("default corpus size is within 1.5-3 MB and copies scales it", () => {
  const size = bytes(corpus.map((d) => d.text));
  assert.ok(size >= 1_500_000 && size <= 3_000_000, `default corpus is ${size} bytes`);
  assert.equal(corpus.length, CONDITIONS.length * TEMPLATE_NAMES.length * DEFAULT_COPIES);
  const doubled = renderCorpus({ copies: 2 * DEFAULT_COPIES });
  assert.equal(doubled.length, 2 * corpus.length);
  const ratio = bytes(doubled.map((d) => d.text)) / size;
  assert.ok(ratio > 1.9 && ratio < 2.1, `ratio ${ratio}`);
});

Deno.test("every document is non-empty, uniquely identified and has no unrendered placeholder", () => {
  const ids = new Set<string>();
  for (const d of corpus) {
    assert.ok(!ids.has(d.id), `duplicate id ${d.id}`);
    ids.add(d.id);
    assert.ok(d.text.trim().length > 100, `${d.id}: too short`);
    for (const bad of FORBIDDEN) assert.ok(!bad.test(d.text), `${d.id}: matches ${bad}`);
    assert.ok(!/\s\s\S/.test(d.text.replaceAll("\n", "")), `${d.id}: double space`);
    assert.ok(!d.text.includes(" ."), `${d.id}: space before period`);
    const t = templateOf(d.id);
    assert.ok(t !== null, `${d.id}: no template`);
    assert.equal(d.source, TEMPLATE_SOURCES[t]);
    assert.ok(getCondition(d.condition) !== undefined, `${d.id}: unknown condition`);
    assert.ok(d.id.includes(`/${d.condition}/`));
  }
});

Deno.test("at least 6 distinct templates and all three sources are used", () => {
  const templates = new Set(corpus.map((d) => templateOf(d.id)));
  assert.ok(templates.size >= 6, `only ${templates.size} templates`);
  assert.deepEqual(new Set(corpus.map((d) => d.source)), new Set(["guidelines", "abstracts", "textbook"]));
});

Deno.test("every condition appears with its name, first-line test and first-line treatment", () => {
  const docsBy = new Map<string, string[]>();
  for (const d of corpus) {
    const list = docsBy.get(d.condition) ?? [];
    list.push(d.text);
    docsBy.set(d.condition, list);
  }
  for (const c of CONDITIONS) {
    const texts = docsBy.get(c.id) ?? [];
    assert.ok(texts.length >= 6, `${c.id}: only ${texts.length} documents`);
    for (const text of texts) {
      assert.ok(text.toLowerCase().includes(c.name.toLowerCase()), `${c.id}: name missing`);
      assert.ok(text.includes(c.firstLineTreatment), `${c.id}: treatment missing`);
      assert.ok(text.includes(c.firstLineTest), `${c.id}: test missing`);
      assert.ok(text.includes(c.complication), `${c.id}: complication missing`);
    }
  }
});

Deno.test("comparison documents contrast conditions of the same system", () => {
  const comparisons = corpus.filter((d) => templateOf(d.id) === "textbook-comparison");
  assert.equal(comparisons.length, CONDITIONS.length * DEFAULT_COPIES);
  for (const d of comparisons.slice(0, 50)) {
    const c = getCondition(d.condition)!;
    const peers = conditionsBySystem(c.system).filter((p) => p.id !== c.id);
    assert.ok(peers.some((p) => d.text.includes(p.firstLineTreatment)), d.id);
  }
});

Deno.test("renderCorpus options: subset of conditions/templates and invalid arguments", () => {
  const subset = CONDITIONS.slice(0, 3);
  const docs = renderCorpus({ seed: 1, copies: 2, conditions: subset, templates: ["abstract-review"] });
  assert.equal(docs.length, 6);
  for (const d of docs) {
    assert.ok(d.text.split("\n")[0].length > 0, "abstract has a title line");
    assert.ok(d.text.includes("\nBackground: "), d.id);
    assert.ok(subset.some((c) => c.id === d.condition));
  }
  assert.throws(() => renderCorpus({ copies: 0 }), RangeError);
  assert.throws(() => renderCorpus({ copies: 1.5 }), RangeError);
  assert.throws(() => renderCorpus({ seed: 0.5 }), RangeError);
});

Deno.test("renderDocument is deterministic and abstracts are PubMed-like", () => {
  const c = getCondition("stemi")!;
  const a = renderDocument(c, "abstract-review", 5);
  assert.equal(a, renderDocument(c, "abstract-review", 5));
  for (const section of ["Background: ", "Methods: ", "Results: ", "Conclusions: "]) {
    assert.ok(a.includes(section));
  }
  const g = renderDocument(c, "guideline-management", 5);
  assert.match(g, /^# /);
  assert.match(g, /\n## /);
});
