// Hub dataset schemas mapped onto the benchmark loaders: file selection per benchmark and the rows of each
// published shape (bigbio med_qa and cais/mmlu Parquet written by pyarrow, see fixtures/hub/make_fixtures.py;
// the others written here with hyparquet-writer or as JSON Lines).
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parquetWriteBuffer } from "hyparquet-writer";
import { BenchmarkFormatError, hubBenchmarkFiles, loadHubBenchmark } from "../../eval/mod.ts";
import { tempDir } from "../helpers.ts";
import { lukaemonMmluParquet, medmcqaParquet, pubmedqaParquet } from "./hub_fixtures.ts";

const FIX = (p: string) => fileURLToPath(new URL(`./fixtures/hub/${p}`, import.meta.url));

/** Writes `files` (path → bytes or text) under `dir`; returns their paths. */
function writeRepo(dir: string, files: Record<string, Uint8Array | ArrayBuffer | string>): string[] {
  for (const [p, v] of Object.entries(files)) {
    Deno.mkdirSync(dirname(join(dir, p)), { recursive: true });
    if (typeof v === "string") Deno.writeTextFileSync(join(dir, p), v);
    else Deno.writeFileSync(join(dir, p), v instanceof ArrayBuffer ? new Uint8Array(v) : v);
  }
  return Object.keys(files);
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

Deno.test("hubBenchmarkFiles: the evaluated split and the demonstrations, of the right configuration", () => {
  assert.deepEqual(
    hubBenchmarkFiles("medmcqa", [
      "README.md",
      "data/train-00000-of-00001.parquet",
      "data/validation-00000-of-00001.parquet",
      "data/test-00000-of-00001.parquet",
    ]),
    ["data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"],
  );
  assert.deepEqual(
    hubBenchmarkFiles("pubmedqa", [
      "pubmed_qa_artificial_source/train/0000.parquet",
      "pubmed_qa_labeled_fold0_source/test/0000.parquet",
      "pubmed_qa_labeled_fold0_source/train/0000.parquet",
      "pubmed_qa_labeled_fold0_source/validation/0000.parquet",
      "pubmed_qa_labeled_fold1_source/test/0000.parquet",
    ]),
    ["pubmed_qa_labeled_fold0_source/test/0000.parquet", "pubmed_qa_labeled_fold0_source/train/0000.parquet"],
  );
  assert.deepEqual(
    hubBenchmarkFiles("mmlu", [
      "anatomy/test/0000.parquet",
      "anatomy/train/0000.parquet",
      "anatomy/validation/0000.parquet",
      "astronomy/test/0000.parquet",
      "virology/test/0000.parquet",
    ]),
    ["anatomy/test/0000.parquet", "anatomy/validation/0000.parquet", "virology/test/0000.parquet"],
  );
  assert.deepEqual(
    hubBenchmarkFiles("medqa", [
      ".gitattributes",
      "phrases_no_exclude_test.jsonl",
      "phrases_no_exclude_train.jsonl",
    ]),
    ["phrases_no_exclude_test.jsonl", "phrases_no_exclude_train.jsonl"],
  );
});

Deno.test("medqa from the hub: bigbio options [{key, value}] (pyarrow Parquet), GBaker jind11 JSONL, the -hf shape", async () => {
  using d = tempDir();
  const bigbio = writeRepo(d.path, {
    "med_qa_en_source/test/0000.parquet": Deno.readFileSync(FIX("bigbio_med_qa_en_source_test.parquet")),
  });
  const b = await loadHubBenchmark("medqa", d.path, bigbio, "bigbio/med_qa");
  assert.deepEqual(b.test.map((q) => [q.answer, q.options[q.answer], q.meta]), [
    [1, "Vitamin C", "step1"],
    [0, "Epinephrine", "step2&3"],
  ]);
  assert.ok(b.notes.some((n) => n.includes("0-shot only")));

  const jind = {
    question: "Q?",
    answer: "b",
    options: { A: "a", B: "b" },
    meta_info: "step1",
    answer_idx: "B",
  };
  const gb = writeRepo(d.path, {
    "phrases_no_exclude_test.jsonl": jsonl([jind, { ...jind, answer_idx: "A" }]),
    "phrases_no_exclude_train.jsonl": jsonl([jind]),
  });
  const g = await loadHubBenchmark("medqa", d.path, gb, "GBaker/MedQA-USMLE-4-options");
  assert.deepEqual(g.test.map((q) => q.answer), [1, 0]);
  assert.equal(g.train.length, 1);

  const hf = writeRepo(d.path, {
    "data/test-00000-of-00001.parquet": parquetWriteBuffer({
      columnData: [
        { name: "id", data: ["x1"] },
        { name: "sent1", data: ["Which?"] },
        ...[0, 1, 2, 3].map((i) => ({ name: `ending${i}`, data: [`e${i}`] })),
        { name: "label", data: [2], type: "INT32" as const },
      ],
    }),
  });
  const h = await loadHubBenchmark("medqa", d.path, hf, "GBaker/MedQA-USMLE-4-options-hf");
  assert.deepEqual([h.test[0].id, h.test[0].answer, h.test[0].options[2]], ["medqa/x1", 2, "e2"]);
});

Deno.test("medmcqa from the hub: 0-based cop detected, validation evaluated, the unlabeled test split never read", async () => {
  using d = tempDir();
  const files = writeRepo(d.path, {
    "data/validation-00000-of-00001.parquet": medmcqaParquet(4, (i) => i),
    "data/train-00000-of-00001.parquet": medmcqaParquet(3, () => 0),
  });
  const all = [...files, "data/test-00000-of-00001.parquet"]; // listed on the hub, not downloaded
  const b = await loadHubBenchmark("medmcqa", d.path, all, "openlifescienceai/medmcqa");
  assert.deepEqual(b.test.map((q) => q.answer), [0, 1, 2, 3]);
  assert.equal(b.train.length, 3);
  assert.ok(b.notes.some((n) => n.includes("0-based")), b.notes.join("\n"));
});

Deno.test("pubmedqa (bigbio fold0 source) and mmlu (lukaemon, cais) from the hub", async () => {
  using d = tempDir();
  const pub = pubmedqaParquet;
  const cfg = "pubmed_qa_labeled_fold0_source";
  const p = await loadHubBenchmark(
    "pubmedqa",
    d.path,
    writeRepo(d.path, {
      [`${cfg}/test/0000.parquet`]: pub(["Does A?", "Does B?", "Does C?"], ["yes", "no", "maybe"]),
      [`${cfg}/train/0000.parquet`]: pub(["Does D?"], ["no"]),
    }),
    "bigbio/pubmed_qa",
  );
  assert.deepEqual(p.test.map((q) => q.answer), [0, 1, 2]);
  assert.equal(p.test[0].question, "context of Does A?\nmore\nDoes A?");
  assert.equal(p.classes, 3);
  assert.equal(p.train.length, 1);

  // The lower-case shape (qiaojin/PubMedQA nests contexts under context; some copies keep them flat).
  const lower = await loadHubBenchmark(
    "pubmedqa",
    d.path,
    writeRepo(d.path, {
      "data/test.jsonl": jsonl([
        { pubid: "7", question: "Q7?", context: { contexts: ["c7"] }, final_decision: "no" },
        { pubid: "8", question: "Q8?", contexts: ["c8"], final_decision: "maybe" },
      ]),
    }),
    "qiaojin/PubMedQA",
  );
  assert.deepEqual(lower.test.map((q) => [q.id, q.question, q.answer]), [
    ["pubmedqa/7", "c7\nQ7?", 1],
    ["pubmedqa/8", "c8\nQ8?", 2],
  ]);

  const luk = lukaemonMmluParquet;
  const m = await loadHubBenchmark(
    "mmlu",
    d.path,
    writeRepo(d.path, {
      "anatomy/test/0000.parquet": luk(4),
      "anatomy/train/0000.parquet": luk(2),
      "virology/test/0000.parquet": luk(1),
      "astronomy/test/0000.parquet": "not read",
    }),
    "lukaemon/mmlu",
  );
  assert.deepEqual(m.test.map((q) => `${q.subject}:${q.answer}`), [
    "anatomy:0",
    "anatomy:1",
    "anatomy:2",
    "anatomy:3",
    "virology:0",
  ]);
  assert.equal(m.train.length, 2);
  assert.ok(m.demosBySubject);
  assert.ok(m.notes.some((n) => n.startsWith("MISSING subjects") && n.includes("nutrition")));

  using c = tempDir();
  const cais = await loadHubBenchmark(
    "mmlu",
    c.path,
    writeRepo(c.path, {
      "anatomy/test-00000-of-00001.parquet": Deno.readFileSync(FIX("cais_mmlu_anatomy_test.parquet")),
    }),
    "cais/mmlu",
  );
  assert.deepEqual(cais.test.map((q) => q.options[q.answer]), ["Femur", "VZV", "Duodenum"]);
});

Deno.test("hub benchmarks: a missing split or a malformed row is one error naming the repo or file:row", async () => {
  using d = tempDir();
  const files = writeRepo(d.path, { "data/train-0.parquet": medmcqaParquet(2, () => 1) });
  await assert.rejects(
    loadHubBenchmark("medmcqa", d.path, files, "org/m"),
    (e: Error) =>
      e instanceof BenchmarkFormatError && /hub dataset org\/m has no validation split/.test(e.message),
  );
  const bad = writeRepo(d.path, {
    "test.jsonl": jsonl([{ question: "Q?", options: { A: "a" }, answer_idx: "A" }]),
  });
  await assert.rejects(loadHubBenchmark("medqa", d.path, bad, "org/q"), /test\.jsonl:1/);
});
