// Benchmark directories are searched for fixed file names in either JSON spelling (.json or .jsonl); a
// directory holding none names every file looked for.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { BenchmarkFormatError, loadBenchmark } from "../../eval/mod.ts";
import { tempDir } from "../helpers.ts";

const FIX = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

Deno.test("MedMCQA: dev.jsonl and train.jsonl are found as dev.json and train.json are", async () => {
  const b = await loadBenchmark("medmcqa", FIX("medmcqa_raw"));
  assert.equal(b.test.length, 3);
  assert.equal(b.train.length, 2);
  assert.ok(b.notes.some((n) => n.includes(join(FIX("medmcqa_raw"), "train.jsonl"))), b.notes.join("\n"));
  const hf = await loadBenchmark("medmcqa", FIX("medmcqa_hf"));
  assert.ok(hf.notes[0].includes("validation.jsonl"), hf.notes[0]);
});

Deno.test("MedQA: test.json/train.json (JSON Lines under the other spelling) are found", async () => {
  using dir = tempDir();
  Deno.copyFileSync(FIX("medqa/test.jsonl"), join(dir.path, "test.json"));
  Deno.copyFileSync(FIX("medqa/train.jsonl"), join(dir.path, "train.json"));
  const b = await loadBenchmark("medqa", dir.path);
  assert.ok(b.test.length > 0 && b.train.length > 0, b.notes.join("\n"));
  assert.ok(b.notes.includes(`train (demonstrations): ${join(dir.path, "train.json")}`), b.notes.join("\n"));
});

Deno.test("PubMedQA: .jsonl spellings of its file names are found", async () => {
  using dir = tempDir();
  Deno.copyFileSync(FIX("pubmedqa/ori_pqal.json"), join(dir.path, "ori_pqal.jsonl"));
  Deno.copyFileSync(FIX("pubmedqa/test_ground_truth.json"), join(dir.path, "test_ground_truth.jsonl"));
  const b = await loadBenchmark("pubmedqa", dir.path);
  assert.equal(b.test.length, 2);
});

Deno.test("a directory without the benchmark's files names every spelling looked for", async () => {
  using dir = tempDir();
  await assert.rejects(
    () => loadBenchmark("medmcqa", dir.path),
    (e: Error) => {
      assert.ok(e instanceof BenchmarkFormatError);
      assert.match(
        e.message,
        /no MedMCQA dev file \(looked for dev\.json, dev\.jsonl, validation\.json, validation\.jsonl\)/,
      );
      return true;
    },
  );
  await assert.rejects(
    () => loadBenchmark("pubmedqa", dir.path),
    /looked for ori_pqal\.json, ori_pqal\.jsonl\)/,
  );
});
