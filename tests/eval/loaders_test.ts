import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  BenchmarkFormatError,
  loadBenchmark,
  loadMedMCQA,
  loadMedQA,
  loadMmlu,
  loadPubMedQA,
  parseCsv,
  parseMedMCQA,
  parseMedQA,
  parseMmlu,
  parsePubMedQA,
} from "../../eval/mod.ts";

const FIX = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

/** MedMCQA's JSON Lines files are named `.json`: copy the `.jsonl` fixtures under those names. */
async function medmcqaDir(which: "raw" | "hf"): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "medmcqa-" });
  for (const e of Deno.readDirSync(FIX(`medmcqa_${which}`))) {
    await Deno.copyFile(
      join(FIX(`medmcqa_${which}`), e.name),
      join(path, e.name.replace(/\.jsonl$/, ".json")),
    );
  }
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("MedQA jind11 5-option: stray quote and whitespace tolerated, gold from answer_idx, text untouched", async () => {
  const qs = await loadMedQA(FIX("medqa/test.jsonl"));
  assert.equal(qs.length, 3);
  assert.deepEqual(qs.map((q) => q.answer), [1, 2, 2]);
  assert.equal(qs[0].options.length, 5);
  assert.equal(qs[0].meta, "step2&3");
  // The stray trailing quote stays in the option text: we do not rewrite what the model is shown.
  assert.equal(qs[1].options[2], 'Phenylalanine hydroxylase"');
  assert.equal(qs[1].options[4], "Fumarylacetoacetate hydrolase ");
  // "C " (trailing whitespace in answer_idx) still names option C.
  assert.equal(qs[2].options[qs[2].answer], "Right coronary artery ");
  assert.ok(qs[2].question.endsWith("occluded? "));
  assert.equal(qs[2].where, `${FIX("medqa/test.jsonl")}:3`);
});

Deno.test("MedQA 4-option file with metamap_phrases and the HF GBaker shape give the same questions", async () => {
  const four = await loadMedQA(FIX("medqa/4_options/phrases_no_exclude_test.jsonl"));
  const hf = await loadMedQA(FIX("medqa/gbaker_test.jsonl"));
  assert.equal(four.length, 2);
  assert.deepEqual(
    four.map((q) => [q.question, q.options, q.answer]),
    hf.map((q) => [q.question, q.options, q.answer]),
  );
  assert.equal(hf[0].id, "medqa/test-00000");
});

Deno.test("MedQA errors name file and line", () => {
  assert.throws(
    () =>
      parseMedQA('{"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "B"}\n{oops', "t.jsonl"),
    {
      name: "BenchmarkFormatError",
      message: /^t\.jsonl:2: not valid JSON/,
    },
  );
  assert.throws(
    () => parseMedQA('\n{"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "E"}', "t.jsonl"),
    /^Error: t\.jsonl:2: answer_idx "E" names no option|t\.jsonl:2: answer_idx "E" names no option/,
  );
  assert.throws(
    () => parseMedQA('{"options": {"A": "x", "B": "y"}, "answer_idx": "A"}', "t.jsonl"),
    /t\.jsonl:1: missing field "question"/,
  );
  assert.throws(
    () => parseMedQA('{"sent1": "q", "ending0": "a", "ending1": "b", "label": 2}', "h.jsonl"),
    /h\.jsonl:1: "label" 2/,
  );
});

Deno.test("MedMCQA raw release: JSON Lines in a .json file, 1-based cop detected and said", async () => {
  await using dir = await medmcqaDir("raw");
  const f = await loadMedMCQA(join(dir.path, "dev.json"));
  assert.equal(f.copBase, 1);
  assert.match(f.note, /1-based/);
  assert.deepEqual(f.questions.map((q) => q.options[q.answer]), [
    "Ophthalmic artery",
    "Ethosuximide",
    "Measles",
  ]);
  assert.deepEqual(f.questions.map((q) => q.subject), ["Anatomy", "Pharmacology", "Pediatrics"]);
  assert.equal(f.unlabeled, 0);
});

Deno.test("MedMCQA HF export: 0-based cop detected, −1 rows skipped as unlabeled", async () => {
  await using dir = await medmcqaDir("hf");
  const f = await loadMedMCQA(join(dir.path, "validation.json"));
  assert.equal(f.copBase, 0);
  assert.match(f.note, /0-based/);
  assert.deepEqual(f.questions.map((q) => q.options[q.answer]), ["Ophthalmic artery", "Ethosuximide"]);
  assert.equal(f.unlabeled, 1);
});

Deno.test("MedMCQA: forced base and out-of-range cop name file and line", () => {
  const row = (cop: number) =>
    JSON.stringify({
      question: "q",
      exp: null,
      cop,
      opa: "a",
      opb: "b",
      opc: "c",
      opd: "d",
      subject_name: "S",
      id: "x",
    });
  assert.equal(parseMedMCQA(row(3), "d.json", 0).questions[0].answer, 3);
  assert.throws(
    () => parseMedMCQA(`${row(2)}\n${row(5)}`, "d.json"),
    /d\.json:2: "cop" 5 is out of range for 1-based/,
  );
  assert.throws(
    () => parseMedMCQA(`${row(0)}\n${row(4)}`, "d.json"),
    /d\.json:2: "cop" 4 is out of range for 0-based/,
  );
  assert.throws(
    () => parseMedMCQA(row(1).replace('"opc":"c",', ""), "d.json"),
    /d\.json:1: missing field "opc"/,
  );
});

Deno.test("PubMedQA: test split = keys of test_ground_truth.json, contexts joined by newline, LONG_ANSWER never shown", async () => {
  const { test, train } = await loadPubMedQA(
    FIX("pubmedqa/ori_pqal.json"),
    FIX("pubmedqa/test_ground_truth.json"),
  );
  assert.deepEqual(test.map((q) => q.id), ["pubmedqa/9488747", "pubmedqa/21645374"], "ascending PMID order");
  assert.deepEqual(test.map((q) => q.options[q.answer]), ["maybe", "yes"]);
  assert.equal(
    test[1].question,
    "Programmed cell death (PCD) is the regulated death of cells within an organism.\n" +
      "The following paper elucidates the role of mitochondrial dynamics during developmentally regulated PCD in vivo in A. madagascariensis.\n" +
      "Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?",
  );
  for (const q of [...test, ...train]) assert.ok(!q.question.includes("SECRET-LONG-ANSWER"));
  assert.deepEqual(train.map((q) => q.id).sort(), ["pubmedqa/16418930", "pubmedqa/17208539"]);
});

Deno.test("PubMedQA: test_set.json keys work too; bad keys and labels are named", () => {
  const ori = JSON.stringify({
    "1": { QUESTION: "Q?", CONTEXTS: ["c"], final_decision: "no", LONG_ANSWER: "x" },
  });
  const set = JSON.stringify({ "1": { QUESTION: "Q?", CONTEXTS: ["c"], final_decision: "no" } });
  assert.equal(parsePubMedQA(ori, "ori.json", set, "test_set.json").test.length, 1);
  assert.throws(
    () => parsePubMedQA(ori, "ori.json", '{"2": "no"}', "gt.json"),
    /gt\.json#2: PMID not in ori\.json/,
  );
  assert.throws(
    () => parsePubMedQA(ori, "ori.json", '{"1": "yes"}', "gt.json"),
    /gt\.json#1: label "yes" disagrees/,
  );
  const bad = JSON.stringify({ "1": { QUESTION: "Q?", CONTEXTS: "c", final_decision: "no" } });
  assert.throws(
    () => parsePubMedQA(bad, "ori.json", '{"1": "no"}', "gt.json"),
    /ori\.json#1: "CONTEXTS" must be a list/,
  );
  assert.throws(
    () => parsePubMedQA("{", "ori.json", "{}", "gt.json"),
    /^BenchmarkFormatError: ori\.json: not valid JSON|ori\.json: not valid JSON/,
  );
});

Deno.test("CSV: quoted commas, doubled quotes, newlines inside quotes, CRLF", () => {
  const recs = parseCsv('a,"b, c","say ""hi"""\r\n"multi\nline",x,y\n\nlast,1,2', "f.csv");
  assert.deepEqual(recs.map((r) => r.fields), [["a", "b, c", 'say "hi"'], ["multi\nline", "x", "y"], [
    "last",
    "1",
    "2",
  ]]);
  assert.deepEqual(recs.map((r) => r.line), [1, 2, 5]);
  assert.throws(() => parseCsv('a,"open\n', "f.csv"), /f\.csv:1: unterminated quoted field/);
});

Deno.test("MMLU: headerless CSV with quoted commas per subject; bad rows name file and line", async () => {
  const qs = await loadMmlu(FIX("mmlu"), "test", ["anatomy", "nutrition"]);
  assert.equal(qs.length, 3);
  assert.equal(qs[0].question, "Which of the following, if any, is a branch of the facial nerve?");
  assert.deepEqual(qs[0].options, ["Temporal", "Deep, petrosal", "Chorda tympani", "All of the above"]);
  assert.equal(qs[0].answer, 3);
  assert.equal(qs[1].question, 'The "anatomical snuffbox" is bounded by which tendon?');
  assert.equal(qs[1].options[3], "Flexor digitorum\nprofundus");
  assert.deepEqual(qs.map((q) => q.subject), ["anatomy", "anatomy", "nutrition"]);
  assert.throws(
    () => parseMmlu("q,a,b,c,d,A\nq,a,b,c,d,E\n", "x_test.csv", "x"),
    /x_test\.csv:2: answer "E" is not A–D/,
  );
  assert.throws(() => parseMmlu("q,a,b,c,A\n", "x_test.csv", "x"), /x_test\.csv:1: expected 6 fields/);
  await assert.rejects(loadMmlu(FIX("mmlu"), "test", ["virology"]), /virology_test\.csv: file not found/);
});

Deno.test("loadBenchmark finds the files of each release layout and reports what it did", async () => {
  const medqa = await loadBenchmark("medqa", FIX("medqa/test.jsonl"));
  assert.equal(medqa.test.length, 3);
  assert.equal(medqa.train.length, 3);
  const medqaDir = await loadBenchmark("medqa", FIX("medqa"));
  assert.equal(medqaDir.test[0].options.length, 4, "a release directory prefers the 4-option file");
  await using raw = await medmcqaDir("raw");
  const mcqa = await loadBenchmark("medmcqa", raw.path);
  assert.equal(mcqa.test.length, 3);
  assert.equal(mcqa.train.length, 2);
  assert.ok(mcqa.notes.some((n) => /1-based/.test(n)));
  await using hf = await medmcqaDir("hf");
  const mcqaHf = await loadBenchmark("medmcqa", hf.path);
  assert.equal(mcqaHf.test.length, 2);
  assert.ok(mcqaHf.notes.some((n) => /0-based/.test(n)) && mcqaHf.notes.some((n) => /1 unlabeled/.test(n)));
  const pqa = await loadBenchmark("pubmedqa", FIX("pubmedqa"));
  assert.equal(pqa.test.length, 2);
  assert.equal(pqa.classes, 3);
  const mmlu = await loadBenchmark("mmlu", FIX("mmlu"));
  assert.equal(mmlu.test.length, 3);
  assert.ok(mmlu.demosBySubject);
  assert.ok(mmlu.notes.some((n) => n.startsWith("MISSING subjects") && n.includes("virology")));
  const demo = await loadBenchmark("demo");
  assert.ok(demo.notes[0].startsWith("DEMO SET"));
  await assert.rejects(loadBenchmark("medqa"), /needs --data/);
  await assert.rejects(loadBenchmark("medqa", FIX("nowhere.jsonl")), (e: Error) => {
    assert.ok(e instanceof BenchmarkFormatError);
    assert.match(e.message, /nowhere\.jsonl: file or directory not found/);
    return true;
  });
});
