// GPT samples over indexed datasets: split strings, index determinism and coverage, the on-disk index cache,
// blending by weight.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BlendedSamples,
  buildBlendingIndex,
  isIndexedSpec,
  openSplitSamples,
  parseDataSpec,
  parseSplit,
  splitFromValidFraction,
  splitRanges,
  SplitSamples,
} from "../../data/blend.ts";
import { InMemoryDocuments } from "../../data/gpt_dataset.ts";
import { IndexedDataset, writeIndexedDataset } from "../../data/indexed_dataset.ts";
import { tempDir } from "../helpers.ts";

/** Documents whose tokens are globally unique (starting at `base`), so coverage can be counted. */
function uniqueDocs(lengths: number[], base = 0): number[][] {
  let next = base;
  return lengths.map((n) => Array.from({ length: n }, () => next++));
}

Deno.test("split strings: Megatron's arithmetic (round half to even, shifted to the count)", () => {
  assert.deepEqual(parseSplit("969,30,1"), [0.969, 0.03, 0.001]);
  assert.deepEqual(parseSplit("98/2"), [0.98, 0.02, 0]);
  // Expected values computed with Megatron's _get_split_indices in Python.
  assert.deepEqual(splitRanges("969,30,1", 1000), { train: [0, 969], valid: [969, 999], test: [999, 1000] });
  assert.deepEqual(splitRanges("1,1", 5), { train: [0, 3], valid: [3, 5], test: [5, 5] });
  assert.deepEqual(splitRanges("98,2,0", 10), { train: [0, 10], valid: [10, 10], test: [10, 10] });
  assert.deepEqual(splitRanges("969,30,1", 37), { train: [0, 36], valid: [36, 37], test: [37, 37] });
  assert.deepEqual(splitRanges("1,1,1", 10), { train: [0, 4], valid: [4, 7], test: [7, 10] });
  assert.deepEqual(splitRanges(splitFromValidFraction(0.05), 33), {
    train: [0, 31],
    valid: [31, 33],
    test: [33, 33],
  });
  for (const bad of ["", "a,b", "1,-1", "0,0,0", "1,2,3,4", "1,,2"]) {
    assert.throws(() => parseSplit(bad), /split '.*'/, bad);
  }
});

Deno.test("data specs: a prefix, weighted prefixes (normalised), unweighted prefixes; errors", () => {
  assert.deepEqual(parseDataSpec("data/a"), [{ weight: 1, prefix: "data/a" }]);
  assert.deepEqual(parseDataSpec(" 3 data/a  1 data/b "), [
    { weight: 0.75, prefix: "data/a" },
    { weight: 0.25, prefix: "data/b" },
  ]);
  assert.deepEqual(parseDataSpec("data/a data/b"), [{ weight: 0.5, prefix: "data/a" }, {
    weight: 0.5,
    prefix: "data/b",
  }]);
  assert.throws(() => parseDataSpec("0.3 data/a 0.7"), /expected PREFIX or 'WEIGHT PREFIX/);
  assert.throws(() => parseDataSpec("data/a 0.3"), /expected PREFIX or 'WEIGHT PREFIX/);
  assert.throws(() => parseDataSpec("0 data/a 0 data/b"), /weights must be positive/);
  assert.throws(() => parseDataSpec("  "), /empty/);
  assert.equal(isIndexedSpec("embedded"), false);
  assert.equal(isIndexedSpec("corpus.jsonl"), false);
  assert.equal(isIndexedSpec("0.3 a 0.7 b"), true);
  assert.equal(isIndexedSpec("out/gap_text_document.idx"), true);
});

Deno.test("each epoch's windows use every token of the split once as an input; windows chain", () => {
  const lengths = [5, 17, 3, 40, 9, 1, 22, 15]; // 112 tokens = 14 windows of 8
  const docs = new InMemoryDocuments(uniqueDocs(lengths));
  const s = new SplitSamples(docs, { seq: 8, seed: 3, first: 0, end: lengths.length });
  assert.equal(s.tokensPerEpoch, 112);
  assert.equal(s.samplesPerEpoch, 14);
  for (let epoch = 0; epoch < 3; epoch++) {
    const seen = new Map<number, number>();
    for (let k = epoch * 14; k < (epoch + 1) * 14; k++) {
      const w = s.sample(k);
      assert.equal(w.length, 9);
      for (const t of w.subarray(0, 8)) seen.set(t, (seen.get(t) ?? 0) + 1);
    }
    assert.equal(seen.size, 112, `epoch ${epoch}: every token is an input`);
    assert.ok([...seen.values()].every((c) => c === 1), `epoch ${epoch}: exactly once`);
  }
  for (let w = 0; w < 40; w++) {
    assert.equal(s.window(w)[8], s.window(w + 1)[0], "windows overlap by one token");
  }
  // Epoch orders differ (seeded per epoch), and a document range restricts the tokens.
  assert.notDeepEqual(s.arrays().docIdx.subarray(0, 8), s.arrays().docIdx.subarray(8, 16));
  const part = new SplitSamples(docs, { seq: 4, seed: 3, first: 3, end: 5 });
  for (let k = 0; k < 30; k++) for (const t of part.sample(k)) assert.ok(t >= 25 && t < 74, `token ${t}`);
});

Deno.test("sample k is a pure function of (documents, seed, seq, range, k): not of how many were built", () => {
  const docs = new InMemoryDocuments(uniqueDocs([7, 30, 2, 11, 19, 4, 25]));
  const opts = { seq: 6, seed: 11, first: 0, end: 7 };
  const small = new SplitSamples(docs, opts), big = new SplitSamples(docs, opts);
  big.ensure(500);
  small.ensure(3);
  for (let k = 0; k < 200; k++) assert.deepEqual(small.sample(k), big.sample(k), `sample ${k}`);
  const other = new SplitSamples(docs, { ...opts, seed: 12 });
  const firsts = (s: SplitSamples) => Array.from({ length: 16 }, (_, k) => s.sample(k)[0]);
  assert.notDeepEqual(firsts(other), firsts(big), "another seed, another order");
  assert.throws(
    () =>
      new SplitSamples(new InMemoryDocuments([[1, 2]]), { seq: 8, seed: 1, first: 0, end: 1, name: "tiny" }),
    /tiny: 1 documents hold 2 tokens: not enough for one sample of 9 tokens/,
  );
  // Empty documents are skipped.
  const holes = new SplitSamples(new InMemoryDocuments([[], [1, 2, 3], [], [4, 5]]), {
    seq: 2,
    seed: 0,
    first: 0,
    end: 4,
  });
  for (let k = 0; k < 10; k++) assert.equal(holes.sample(k).length, 3);
});

Deno.test("the sample index is cached next to the data, reused, extended and rebuilt when missing", async () => {
  using dir = tempDir();
  const prefix = join(dir.path, "cache_text_document");
  await writeIndexedDataset(prefix, uniqueDocs([50, 13, 77, 5, 31, 64, 9, 40], 3), "uint16");
  using ds = IndexedDataset.open(prefix);
  const opts = { seq: 16, seed: 5, first: 0, end: 8, numSamples: 30 };
  const first = await openSplitSamples(ds, opts);
  assert.equal(first.outcome, "built");
  const files = [...Deno.readDirSync(dir.path)].map((e) => e.name).filter((n) =>
    n.includes("_idx") || n.endsWith("index.json")
  );
  assert.equal(files.length, 4, files.join(", "));
  for (const suffix of ["_doc_idx.bin", "_sample_idx.bin", "_shuffle_idx.bin", "_index.json"]) {
    assert.ok(files.some((f) => f.startsWith("cache_text_document_") && f.endsWith(suffix)), suffix);
  }
  const again = await openSplitSamples(ds, opts);
  assert.equal(again.outcome, "hit");
  const fresh = new SplitSamples(ds, opts);
  for (let k = 0; k < 60; k++) {
    assert.deepEqual(again.samples.sample(k), fresh.sample(k), `cached sample ${k}`);
    assert.deepEqual(first.samples.sample(k), fresh.sample(k), `built sample ${k}`);
  }
  // More samples than cached: extended and rewritten; fewer: still a hit.
  assert.equal((await openSplitSamples(ds, { ...opts, numSamples: 200 })).outcome, "built");
  assert.equal((await openSplitSamples(ds, { ...opts, numSamples: 150 })).outcome, "hit");
  // A missing file is rebuilt; another seed is another key.
  await Deno.remove(join(dir.path, files.find((f) => f.endsWith("_shuffle_idx.bin"))!));
  assert.equal((await openSplitSamples(ds, opts)).outcome, "built");
  assert.equal((await openSplitSamples(ds, { ...opts, seed: 6 })).outcome, "built");
  assert.equal((await openSplitSamples(ds, { ...opts, cache: false })).outcome, "uncached");
  const count = [...Deno.readDirSync(dir.path)].filter((e) => e.name.endsWith("_index.json")).length;
  assert.equal(count, 2);
  assert.ok(![...Deno.readDirSync(dir.path)].some((e) => e.name.includes(".tmp-")), "no temporaries left");
});

Deno.test("blending: Megatron's largest-error rule; proportions within 1% over 10k samples", () => {
  // Hand-computed with w·max(i,1) − count: i=0: errors .75/.25 → 0; i=1: -.25/.25 → 1; i=2: .5/-.5 → 0; …
  assert.deepEqual(Array.from(buildBlendingIndex([0.75, 0.25], 8).datasetIndex), [0, 1, 0, 0, 0, 1, 0, 0]);
  const weights = [0.2, 0.3, 0.5];
  const parts = weights.map((weight, d) => ({
    name: `d${d}`,
    weight,
    samples: new SplitSamples(new InMemoryDocuments(uniqueDocs([40, 25, 60], 1000 * d)), {
      seq: 8,
      seed: 1,
      first: 0,
      end: 3,
    }),
  }));
  const blend = BlendedSamples.of(parts);
  const n = 10_000, counts = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const d = blend.datasetOf(i);
    counts[d]++;
    const s = blend.sample(i);
    assert.ok(s[0] >= 1000 * d && s[0] < 1000 * d + 125, "the sample comes from the chosen dataset");
  }
  weights.forEach((w, d) =>
    assert.ok(Math.abs(counts[d] / n - w) < 0.01, `dataset ${d}: ${counts[d] / n} vs ${w}`)
  );
  const batch = blend.batch(10, 3);
  assert.deepEqual(batch.tokens.subarray(8, 16), blend.sample(11).subarray(0, 8));
  assert.deepEqual(batch.targets.subarray(8, 16), blend.sample(11).subarray(1));
});

Deno.test("BlendedSamples.open: spec over files, split parts disjoint, samples independent of numSamples", async () => {
  using dir = tempDir();
  const a = join(dir.path, "a"), b = join(dir.path, "b");
  await writeIndexedDataset(`${a}_text_document`, uniqueDocs(Array(40).fill(20), 0), "uint16");
  await writeIndexedDataset(`${b}_text_document`, uniqueDocs(Array(20).fill(30), 10_000), "uint16");
  const options = { seq: 16, seed: 9, numSamples: 100, split: "8,2,0" };
  using train = await BlendedSamples.open(`0.6 ${a} 0.4 ${b}`, options);
  using valid = await BlendedSamples.open(`0.6 ${a} 0.4 ${b}`, { ...options, part: "valid" });
  using more = await BlendedSamples.open(`0.6 ${a} 0.4 ${b}`, { ...options, numSamples: 1000 });
  // train: a docs 0..31 (tokens < 640), b docs 0..15 (tokens < 10480); valid: the rest.
  const inTrain = (t: number) => t < 640 || (t >= 10_000 && t < 10_480);
  for (let i = 0; i < 200; i++) {
    assert.ok(train.sample(i).every(inTrain), `train sample ${i}`);
    assert.ok(valid.sample(i).every((t) => !inTrain(t)), `valid sample ${i}`);
    assert.deepEqual(train.sample(i), more.sample(i), `sample ${i} does not depend on numSamples`);
  }
  assert.equal(train.parts[0].name, `${a}_text_document`);
  await assert.rejects(
    () => BlendedSamples.open(`0.5 ${a} 0.5 ${join(dir.path, "missing")}`, options),
    /missing\.idx: no such indexed dataset/,
  );
});

Deno.test("BlendedSamples.sample: the JSDoc example (one 3-token document, seq 2) gives [3, 1, 2] for sample 1", () => {
  const a = new SplitSamples(new InMemoryDocuments([[1, 2, 3]]), { seq: 2, seed: 0, first: 0, end: 1 });
  const blend = BlendedSamples.of([{ name: "a", weight: 1, samples: a }]);
  assert.deepEqual(Array.from(blend.sample(1)), [3, 1, 2]);
  assert.deepEqual(
    Array.from(blend.sample(1)),
    Array.from(a.sample(1)),
    "one dataset: the blend is its samples",
  );
});
