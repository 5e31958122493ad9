// GPT sample index: windows of seq+1 tokens, determinism per seed, every token used once per epoch.
import assert from "node:assert/strict";
import { batchOf, GptSamples, InMemoryDocuments } from "../../data/gpt_dataset.ts";
import { parseCorpusJsonl, tokenizeCorpus } from "../../data/corpus.ts";

// Documents whose tokens are globally unique, so coverage can be counted.
function docs(): InMemoryDocuments {
  let next = 0;
  const lengths = [5, 17, 3, 40, 9, 1, 22, 13];
  return new InMemoryDocuments(lengths.map((n) => Array.from({ length: n }, () => next++)));
}

Deno.test("each epoch covers every token exactly once (windows overlap by one token)", () => {
  const d = docs(), total = 110, seq = 8;
  const s = new GptSamples(d, { seq, seed: 3, numSamples: Math.floor((total - 1) / seq) });
  assert.equal(s.epochs, 1);
  const seen = new Map<number, number>();
  for (let i = 0; i < s.numSamples; i++) {
    const w = s.sample(i);
    assert.equal(w.length, seq + 1);
    for (const t of w.subarray(0, seq)) seen.set(t, (seen.get(t) ?? 0) + 1); // inputs
  }
  assert.equal(seen.size, s.numSamples * seq, "no token repeated as an input within an epoch");
  assert.ok([...seen.values()].every((c) => c === 1));
  assert.ok(total - seen.size < seq + 1, "at most one partial window is left over");
});

Deno.test("sample i is a pure function of (documents, seed, seq, i); seeds change the order", () => {
  const a = new GptSamples(docs(), { seq: 6, seed: 1, numSamples: 40 });
  const b = new GptSamples(docs(), { seq: 6, seed: 1, numSamples: 40 });
  const c = new GptSamples(docs(), { seq: 6, seed: 2, numSamples: 40 });
  assert.ok(a.epochs >= 2, "more samples than one epoch adds epochs");
  for (let i = 0; i < a.numSamples; i++) assert.deepEqual(a.sample(i), b.sample(i));
  assert.notDeepEqual(
    Array.from({ length: 10 }, (_, i) => a.sample(i)[0]),
    Array.from({ length: 10 }, (_, i) => c.sample(i)[0]),
  );
  const batch = batchOf(a, 4, 3);
  assert.deepEqual(batch.tokens.subarray(0, 6), a.sample(4).subarray(0, 6));
  assert.deepEqual(batch.targets.subarray(0, 6), a.sample(4).subarray(1));
  assert.throws(
    () => new GptSamples(new InMemoryDocuments([[1, 2]]), { seq: 8, seed: 1, numSamples: 1 }),
    /not enough for one sample of 9 tokens/,
  );
});

Deno.test("corpus JSONL: errors name file and line; split is seeded and keeps both sides", () => {
  assert.throws(
    () => parseCorpusJsonl('{"text": "a"}\n{"text": 3}\n', "c.jsonl"),
    /c.jsonl:2: missing string field 'text'/,
  );
  assert.throws(() => parseCorpusJsonl('{"text": "a"}\n\n{oops\n', "c.jsonl"), /c.jsonl:3: malformed JSON/);
  assert.throws(() => parseCorpusJsonl("[1]\n", "c.jsonl"), /c.jsonl:1: expected a JSON object/);
  assert.throws(() => parseCorpusJsonl("\n", "c.jsonl"), /c.jsonl: no documents/);
  const d = parseCorpusJsonl('{"text": "x", "source": "pubmed", "pmid": 7}\n', "c.jsonl");
  assert.equal((d[0] as unknown as { pmid: number }).pmid, 7, "extra fields kept");
  const enc = {
    encode: (
      t: string,
      o: { addBos?: boolean; addEos?: boolean },
    ) => [...(o.addBos ? [1] : []), t.length, ...(o.addEos ? [2] : [])],
  };
  const many = Array.from({ length: 100 }, (_, i) => ({ text: "x".repeat(i + 1) }));
  const a = tokenizeCorpus(many, enc, 0.1, 5), b = tokenizeCorpus(many, enc, 0.1, 5);
  assert.deepEqual(a.valid, b.valid);
  assert.ok(a.valid.length > 2 && a.valid.length < 25, `validation size ${a.valid.length}`);
  assert.equal(a.train.length + a.valid.length, 100);
  assert.deepEqual(Array.from(a.docs[0]), [1, 1, 2], "<s> text </s>");
});
