// Replay sampling: keep rate within tolerance, deterministic per seed.
import assert from "node:assert/strict";
import { createReplaySampler, sampleReplay } from "../../../data/clean/replay.ts";
import { runCleaner } from "../../../data/clean/pipeline.ts";

const docs = Array.from({ length: 40_000 }, (_, i) => ({ id: i, text: `general web document number ${i}` }));

Deno.test("replay: kept fraction within 4σ of the keep rate", async () => {
  for (const keepRate of [0.0004, 0.01, 0.25]) {
    const { counts } = await sampleReplay(docs, { keepRate, seed: 42 });
    const mean = docs.length * keepRate, sd = Math.sqrt(docs.length * keepRate * (1 - keepRate));
    assert.ok(
      Math.abs(counts.kept - mean) <= 4 * sd + 1,
      `rate ${keepRate}: kept ${counts.kept}, expected ${mean}`,
    );
    assert.equal(counts.dropped.not_sampled, docs.length - counts.kept);
  }
});

Deno.test("replay: same seed → same documents; another seed → others; records unchanged", () => {
  const pick = (seed: number) =>
    runCleaner(docs, createReplaySampler({ keepRate: 0.01, seed }, null)).docs.map((d) => d.id);
  const a = pick(1), b = pick(1), c = pick(2);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const kept = runCleaner(docs.slice(0, 10), createReplaySampler({ keepRate: 1 }, null)).docs;
  assert.deepEqual(kept, docs.slice(0, 10));
  assert.equal(runCleaner(docs, createReplaySampler({ keepRate: 0 }, null)).counts.kept, 0);
  assert.throws(() => createReplaySampler({ keepRate: 1.5 }, null), /keep rate must be in \[0, 1\]/);
  assert.throws(
    () => createReplaySampler({ keepRate: 1 }, null).clean({ id: 1 }, "r.jsonl", 3),
    /r\.jsonl:3: missing string field 'text'/,
  );
});
