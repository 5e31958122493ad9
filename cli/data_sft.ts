/**
 * SFT data built from benchmark questions: Meditron's `{"prompt", "gold"}` rows whose prompt is exactly the
 * evaluation prompt (system text, question block, "The answer is:") and whose gold is the answer label, so that
 * a model finetuned on them answers `deno task eval … --chat` prompts in the trained format.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { buildPrompt, goldLabel, loadBenchmark, type MCQuestion, systemText } from "../eval/mod.ts";
import { demoQuestions } from "../eval/benchmarks/demo.ts";
import { UsageError } from "./common.ts";

/** One Meditron SFT row. */
export interface PromptGoldRow {
  /** The question prompt (Meditron's evaluation prompt, unwrapped). */
  prompt: string;
  /** The target: the answer label, or `"{explanation}.\nThe answer is: {gold} ###"` with CoT. */
  gold: string;
}

/**
 * Rows of questions of a benchmark (`benchmark` picks the system text); with `explanation` given, Meditron's
 * CoT target is used and questions without an explanation are skipped (the caller counts them).
 *
 * @example
 * ```ts
 * import { questionRows } from "./data_sft.ts";
 * const rows = questionRows("demo", [{ id: "1", question: "Best test", options: ["ECG", "CT", "MRI", "US"],
 *   answer: 1, kind: "letter", where: "x" }]);
 * console.log(rows[0].gold); // "B"
 * ```
 */
export function questionRows(
  benchmark: string,
  questions: readonly MCQuestion[],
  explanation?: (q: MCQuestion) => string | undefined,
): PromptGoldRow[] {
  const out: PromptGoldRow[] = [];
  for (const q of questions) {
    const prompt = buildPrompt(q, {
      system: systemText(benchmark, q.options.length),
      format: "meditron",
      cot: explanation !== undefined,
      chat: false,
      demos: [],
    });
    if (explanation === undefined) {
      out.push({ prompt, gold: goldLabel(q) });
      continue;
    }
    const exp = explanation(q)?.trim();
    if (!exp) continue;
    out.push({ prompt, gold: `${exp.replace(/\.$/, "")}.\nThe answer is: ${goldLabel(q)} ###` });
  }
  return out;
}

/**
 * The small instruction set of the demo: every `train` question of the demo split (conditions never asked in
 * the demo `test` split) as a `{"prompt", "gold"}` row.
 *
 * @example
 * ```ts
 * import { demoSftRows } from "./data_sft.ts";
 * console.log(demoSftRows().length > 100); // true
 * ```
 */
export function demoSftRows(): PromptGoldRow[] {
  return questionRows("demo", demoQuestions().train);
}

/** Help of `deno task data sft-from-benchmark`. */
export const HELP_SFT_FROM_BENCHMARK =
  `Usage: deno task data sft-from-benchmark <medqa|medmcqa|pubmedqa> --data PATH --out FILE [--cot]

Builds SFT JSONL ({"prompt", "gold"} rows, Meditron's target format) from a benchmark's TRAIN split: the prompt is
Meditron's evaluation prompt, the gold the answer label; with --cot the gold is
"{explanation}.\\nThe answer is: {gold} ###" from MedMCQA's 'exp' or PubMedQA's LONG_ANSWER, and rows without
an explanation are dropped (counted). MedQA has no explanations (no --cot).

Options:
  --data PATH   the benchmark as 'deno task eval' reads it (MedQA: the test file or release directory, whose
                train file is used; MedMCQA: the directory with train.json; PubMedQA: the directory with
                ori_pqal.json, train = the PMIDs outside the test keys)
  --out FILE    output JSONL
  --cot         chain-of-thought targets
  -h, --help    this help

Examples:
  deno task data sft-from-benchmark medmcqa --data data/medmcqa --out runs/data/medmcqa_sft.jsonl --cot
  deno task data sft-from-benchmark pubmedqa --data data/pubmedqa --out runs/data/pubmedqa_sft.jsonl
`;

// Explanations are not kept by the eval loaders: re-read them from the question's source location
// ('file:line' for MedMCQA JSON Lines, 'file#PMID' for PubMedQA's ori_pqal.json).
function explanations(benchmark: string): (q: MCQuestion) => string | undefined {
  const files = new Map<string, string>();
  const read = (f: string): string => {
    let t = files.get(f);
    if (t === undefined) {
      t = Deno.readTextFileSync(f);
      files.set(f, t);
    }
    return t;
  };
  const parsed = new Map<string, Record<string, Record<string, unknown>>>();
  return (q: MCQuestion) => {
    if (benchmark === "medmcqa") {
      const at = q.where.lastIndexOf(":");
      const line = read(q.where.slice(0, at)).split("\n")[Number(q.where.slice(at + 1)) - 1];
      const exp = (JSON.parse(line) as Record<string, unknown>).exp;
      return typeof exp === "string" ? exp : undefined;
    }
    const at = q.where.lastIndexOf("#");
    const file = q.where.slice(0, at);
    let json = parsed.get(file);
    if (!json) {
      json = JSON.parse(read(file)) as Record<string, Record<string, unknown>>;
      parsed.set(file, json);
    }
    const long = json[q.where.slice(at + 1)]?.LONG_ANSWER;
    return typeof long === "string" ? long : undefined;
  };
}

/**
 * `deno task data sft-from-benchmark`: writes the SFT JSONL of a benchmark's train split; returns the counts.
 *
 * @example
 * ```ts ignore
 * await sftFromBenchmark(["medmcqa", "--data", "data/medmcqa", "--out", "medmcqa_sft.jsonl", "--cot"]);
 * ```
 */
export async function sftFromBenchmark(args: string[]): Promise<{ written: number; dropped: number }> {
  const { values: v, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      out: { type: "string" },
      cot: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      debug: { type: "boolean" },
    },
  });
  if (v.help) {
    console.log(HELP_SFT_FROM_BENCHMARK);
    return { written: 0, dropped: 0 };
  }
  const name = positionals[0];
  if (positionals.length !== 1 || !["medqa", "medmcqa", "pubmedqa"].includes(name)) {
    throw new UsageError("name one benchmark: medqa, medmcqa or pubmedqa");
  }
  if (!v.data || !v.out) throw new UsageError("--data PATH and --out FILE are required");
  if (v.cot && name === "medqa") {
    throw new UsageError("MedQA has no explanations: --cot needs medmcqa or pubmedqa");
  }
  const bench = await loadBenchmark(name as "medqa" | "medmcqa" | "pubmedqa", v.data);
  if (bench.train.length === 0) {
    throw new Error(`${v.data}: no train split found (${bench.notes.join("; ")})`);
  }
  const rows = questionRows(name, bench.train, v.cot ? explanations(name) : undefined);
  await Deno.writeTextFile(v.out, rows.map((r) => JSON.stringify(r) + "\n").join(""));
  const dropped = bench.train.length - rows.length;
  console.log(
    `${name}: ${rows.length} rows from ${bench.train.length} train questions -> ${v.out}` +
      (v.cot ? ` (${dropped} dropped: no explanation)` : ""),
  );
  return { written: rows.length, dropped };
}
