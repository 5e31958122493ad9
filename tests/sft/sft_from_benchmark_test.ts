// deno task data sft-from-benchmark: Meditron's prompt/gold rows from train splits, CoT targets, drop counts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { main as dataMain } from "../../cli/data.ts";
import { sftFromBenchmark } from "../../cli/data_sft.ts";
import { readSftJsonl } from "../../data/sft.ts";

const FIX = new URL("../eval/fixtures/", import.meta.url).pathname;
const row = (q: string, exp: string | null, cop: number) =>
  JSON.stringify({ question: q, exp, cop, opa: "Alpha", opb: "Beta", opc: "Gamma", opd: "Delta", id: q });

async function readRows(path: string): Promise<{ prompt: string; gold: string }[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("sft-from-benchmark medmcqa: letter golds, and CoT golds from 'exp' with rows lacking it dropped", async () => {
  const dir = await Deno.makeTempDir();
  const log = console.log;
  console.log = () => {};
  try {
    await Deno.writeTextFile(join(dir, "dev.json"), row("Dev question", null, 1) + "\n");
    await Deno.writeTextFile(
      join(dir, "train.json"),
      [row("Q one", "Because of X.", 2), row("Q two", null, 3), row("Q three", "Y is typical", 4)].join("\n"),
    );
    const plain = join(dir, "plain.jsonl"), cot = join(dir, "cot.jsonl");
    await dataMain(["sft-from-benchmark", "medmcqa", "--data", dir, "--out", plain]);
    const p = await readRows(plain);
    assert.deepEqual(p.map((r) => r.gold), ["B", "C", "D"]);
    assert.ok(p[0].prompt.includes("Question: Q one?\n\nOptions:\nA. Alpha\nB. Beta"));
    assert.ok(p[0].prompt.endsWith("The answer is:\n"));
    const counts = await sftFromBenchmark(["medmcqa", "--data", dir, "--out", cot, "--cot"]);
    assert.deepEqual(counts, { written: 2, dropped: 1 });
    const c = await readRows(cot);
    assert.deepEqual(c.map((r) => r.gold), [
      "Because of X.\nThe answer is: B ###",
      "Y is typical.\nThe answer is: D ###",
    ]);
    assert.ok(c[0].prompt.endsWith("Let's think step by step.\n"));
    // The rows are valid finetuning data.
    assert.equal((await readSftJsonl(cot))[1][1].role, "answer");
    await assert.rejects(
      () => sftFromBenchmark(["medqa", "--data", dir, "--out", cot, "--cot"]),
      /no explanations/,
    );
  } finally {
    console.log = log;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sft-from-benchmark pubmedqa --cot: LONG_ANSWER of the PMIDs outside the test keys", async () => {
  const dir = await Deno.makeTempDir();
  const log = console.log;
  console.log = () => {};
  try {
    const out = join(dir, "pq.jsonl");
    const counts = await sftFromBenchmark([
      "pubmedqa",
      "--data",
      join(FIX, "pubmedqa"),
      "--out",
      out,
      "--cot",
    ]);
    const ori = JSON.parse(await Deno.readTextFile(join(FIX, "pubmedqa", "ori_pqal.json")));
    const rows = await readRows(out);
    assert.equal(counts.written, 2);
    for (const r of rows) {
      const pmid = Object.keys(ori).find((k) => r.prompt.includes(ori[k].QUESTION))!;
      assert.ok(pmid && !["21645374", "9488747"].includes(pmid));
      const long = ori[pmid].LONG_ANSWER.trim().replace(/\.$/, "");
      assert.equal(r.gold, `${long}.\nThe answer is: ${ori[pmid].final_decision} ###`);
    }
  } finally {
    console.log = log;
    await Deno.remove(dir, { recursive: true });
  }
});
