// Exact dedup keys and sets; MinHash LSH near-duplicates.
import assert from "node:assert/strict";
import { hash53, idKey, KeySet } from "../../../data/clean/dedup.ts";
import { MinHashIndex, optimalBands, shingleHashes } from "../../../data/clean/minhash.ts";
import { countWords, DocumentFilters } from "../../../data/clean/filters.ts";
import { mulberry32 } from "../../../data/gpt_dataset.ts";

/** A pseudo-random "document" of `n` words from a 2000-word vocabulary. */
function randomDoc(n: number, seed: number): string[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => `w${Math.floor(rand() * 2000)}`);
}

Deno.test("KeySet and idKey: numbers and strings of the same id collide, others do not", () => {
  const s = new KeySet();
  assert.equal(s.add(idKey(254640939)!), true);
  assert.equal(s.has(idKey("254640939")!), true);
  assert.equal(s.add(idKey(" 254640939 ")!), false);
  assert.equal(s.has(idKey(254640938)!), false);
  assert.equal(idKey(null), null);
  assert.equal(idKey(""), null);
  for (let i = 0; i < 100_000; i++) s.add(`key-${i}`);
  assert.equal(s.size, 100_001, "no collisions among 100k keys");
  assert.notEqual(hash53("a"), hash53("a", 1), "seeded");
  assert.ok(Number.isSafeInteger(hash53("anything")));
});

Deno.test("optimalBands: candidates at the threshold are found with ≥ 95% probability", () => {
  for (const [t, n] of [[0.5, 64], [0.8, 128], [0.9, 256]] as const) {
    const { bands, rows } = optimalBands(t, n);
    assert.ok(bands * rows <= n);
    assert.ok(1 - (1 - t ** rows) ** bands >= 0.95, `t=${t} n=${n}: ${bands}×${rows}`);
    if (t >= 0.8) {
      assert.ok(1 - (1 - (t / 2) ** rows) ** bands < 0.05, `t=${t}: dissimilar docs rarely candidates`);
    }
  }
});

Deno.test("shingles: word n-grams, case-insensitive; short texts give one shingle", () => {
  assert.equal(shingleHashes("A b C d e", 3).length, 3);
  assert.deepEqual(shingleHashes("A B C", 2), shingleHashes("a, b. c!", 2));
  assert.equal(shingleHashes("two words", 5).length, 1);
  assert.equal(shingleHashes("— 42 —", 5).length, 1);
  assert.equal(shingleHashes("", 5).length, 0);
});

Deno.test("MinHash: similarity estimate tracks the true Jaccard similarity of shingle sets", () => {
  const index = new MinHashIndex({ threshold: 0.8, numPerm: 256, shingleSize: 1, seed: 3 });
  const a = randomDoc(400, 1);
  const b = [...a.slice(0, 300), ...randomDoc(100, 2)];
  const setA = new Set(a), setB = new Set(b);
  const inter = [...setA].filter((w) => setB.has(w)).length;
  const jaccard = inter / (setA.size + setB.size - inter);
  const est = MinHashIndex.similarity(index.signature(a.join(" ")), index.signature(b.join(" ")));
  assert.ok(Math.abs(est - jaccard) < 0.1, `estimate ${est} vs true ${jaccard}`);
});

Deno.test("MinHash LSH: near-duplicates with a few words changed are caught, distinct docs kept", () => {
  const index = new MinHashIndex({ threshold: 0.8, seed: 7 });
  const originals = Array.from({ length: 50 }, (_, i) => randomDoc(300, 100 + i));
  for (const doc of originals) {
    assert.equal(index.addIfNew(doc.join(" ")), true, "distinct documents are new");
  }
  let caught = 0;
  originals.forEach((doc, i) => {
    const edited = [...doc];
    for (const k of [40, 150, 260]) edited[k] = `changed${i}x${k}`; // 3 of 300 words changed
    if (!index.addIfNew(edited.join(" "))) caught++;
  });
  assert.equal(caught, 50, "every edited copy is a near-duplicate");
  assert.equal(index.size, 50);
  const unrelated = randomDoc(300, 999).join(" ");
  assert.equal(index.addIfNew(unrelated), true);
  assert.equal(
    new MinHashIndex({ threshold: 0.8, seed: 7 }).signature(unrelated).join(),
    index.signature(unrelated).join(),
  );
  assert.notEqual(
    new MinHashIndex({ threshold: 0.8, seed: 8 }).signature(unrelated).join(),
    index.signature(unrelated).join(),
  );
});

Deno.test("filters: near_duplicate only when enabled; exact duplicate counted first", () => {
  const base = randomDoc(200, 5);
  const edited = [...base];
  edited[10] = "different"; // inside the 500-character exact key
  const docs = [base.join(" "), base.join(" "), edited.join(" ")];
  const exactOnly = new DocumentFilters({ language: null }, null);
  assert.deepEqual(docs.map((d) => exactOnly.check(d)), [null, "duplicate", null]);
  const near = new DocumentFilters({ language: null, nearDedup: { threshold: 0.8, seed: 1 } }, null);
  assert.deepEqual(docs.map((d) => near.check(d)), [null, "duplicate", "near_duplicate"]);
  assert.throws(() => new MinHashIndex({ threshold: 1.5 }), /threshold must be in \(0, 1\]/);
});

Deno.test("countWords agrees with splitting on whitespace", () => {
  for (const t of ["", "  ", "one", " Give 5 mg\tdaily.\n", "a\u00A0b\u2003c", "指南 text\r\nmore  words "]) {
    assert.equal(countWords(t), t.split(/\s+/).filter((w) => w !== "").length, JSON.stringify(t));
  }
});
