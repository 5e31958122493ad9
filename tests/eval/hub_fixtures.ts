// Hub-shaped benchmark files built in tests (hyparquet-writer).
import { parquetWriteBuffer } from "hyparquet-writer";

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
