// Hub-shaped benchmark files built in tests (hyparquet-writer).
import { parquetWriteBuffer } from "hyparquet-writer";

/** PubMedQA as bigbio's `pubmed_qa_labeled_fold0_source` Parquet (upper-case keys, contexts as a list). */
export function pubmedqaParquet(questions: string[], decisions: string[]): ArrayBuffer {
  return parquetWriteBuffer({
    columnData: [
      { name: "QUESTION", data: questions },
      { name: "CONTEXTS", data: questions.map((x) => [`context of ${x}`, "more"]) },
      { name: "final_decision", data: decisions },
      { name: "LONG_ANSWER", data: questions.map(() => "hidden") },
    ],
  });
}

/** One MMLU subject split as lukaemon/mmlu's Parquet (`input`, `A`–`D`, `target`), gold letters cycling A–D. */
export function lukaemonMmluParquet(n: number): ArrayBuffer {
  return parquetWriteBuffer({
    columnData: [
      { name: "input", data: Array.from({ length: n }, (_, i) => `Q${i}`) },
      ...["A", "B", "C", "D"].map((k) => ({
        name: k,
        data: Array.from({ length: n }, () => k.toLowerCase()),
      })),
      { name: "target", data: Array.from({ length: n }, (_, i) => "ABCD"[i % 4]) },
    ],
  });
}

/** MedMCQA as the HF export: 0-based cop, −1 on the unlabeled test split. */
export function medmcqaParquet(n: number, cop: (i: number) => number): ArrayBuffer {
  const rows = Array.from({ length: n }, (_, i) => i);
  return parquetWriteBuffer({
    columnData: [
      { name: "id", data: rows.map((i) => `m${i}`) },
      { name: "question", data: rows.map((i) => `Question ${i}: which option is right?`) },
      ...["opa", "opb", "opc", "opd"].map((k) => ({ name: k, data: rows.map((i) => `${k} ${i}`) })),
      { name: "cop", data: rows.map((i) => BigInt(cop(i))), type: "INT64" as const },
      { name: "subject_name", data: rows.map(() => "Anatomy") },
    ],
  });
}
