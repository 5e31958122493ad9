// Corpus JSON Lines: errors name file and line; the seeded document split.
import assert from "node:assert/strict";
import { parseCorpusJsonl, tokenizeCorpus } from "../../data/corpus.ts";

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
