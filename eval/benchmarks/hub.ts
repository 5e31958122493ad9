/**
 * Benchmarks as published on the Hugging Face Hub: which files of a dataset repository to fetch, and how each
 * hub schema maps onto the loaders of the original releases. Rows come from Parquet, JSON Lines or JSON files
 * of a snapshot directory (see `data/hub.ts` for fetching it).
 *
 * | benchmark | schemas                                                                                        |
 * | --------- | ---------------------------------------------------------------------------------------------- |
 * | medqa     | jind11 JSONL (`GBaker/MedQA-USMLE-4-options`), `-hf` (`sent1`, `ending0..3`, `label`), bigbio `med_qa_en_source` / `med_qa_en_4options_source` (`options: [{key, value}]`) |
 * | medmcqa   | HF `medmcqa` / `openlifescienceai/medmcqa` (0-based `cop`, −1 unlabeled); validation is evaluated, as the paper |
 * | pubmedqa  | bigbio `pubmed_qa_labeled_fold0_source` (`QUESTION`, `CONTEXTS`, `final_decision`), its test split of 500 |
 * | mmlu      | `lukaemon/mmlu` (`input`, `A`–`D`, `target`) and `cais/mmlu` (`question`, `choices`, `answer`), per subject |
 *
 * @module
 */

import { basename } from "node:path";
import { readParquetRows } from "../../data/parquet.ts";
import type { MCQuestion } from "../question.ts";
import { asRecord, BenchmarkFormatError, parseJsonLines, readBenchmarkFile, stringField } from "../errors.ts";
import { parseMedQA } from "./medqa.ts";
import { parseMedMCQA } from "./medmcqa.ts";
import { pubmedqaQuestion } from "./pubmedqa.ts";
import { MMLU_MEDICAL_SUBJECTS, mmluQuestion } from "./mmlu.ts";
import type { Benchmark, BenchmarkName } from "./mod.ts";

/**
 * The hub dataset each benchmark is fetched from when `--data` is not given (`org/name[@revision]`).
 *
 * @example
 * ```ts
 * import { HUB_BENCHMARK_REPOS } from "./hub.ts";
 * console.log(HUB_BENCHMARK_REPOS.medqa); // GBaker/MedQA-USMLE-4-options
 * ```
 */
export const HUB_BENCHMARK_REPOS: Readonly<Record<Exclude<BenchmarkName, "demo">, string>> = {
  medqa: "GBaker/MedQA-USMLE-4-options",
  medmcqa: "openlifescienceai/medmcqa",
  pubmedqa: "bigbio/pubmed_qa@refs/convert/parquet",
  mmlu: "lukaemon/mmlu@refs/convert/parquet",
};

type Split = "test" | "validation" | "train";
const DATA_FILE = /\.(parquet|jsonl|json)$/;

/** The split a data file belongs to, from its path words (`test/0000.parquet`, `phrases_no_exclude_dev.jsonl`). */
function splitOf(path: string): Split | undefined {
  const words = path.toLowerCase().split(/[\/._-]+/);
  if (words.includes("test")) return "test";
  if (words.some((w) => w === "validation" || w === "dev" || w === "valid" || w === "val")) {
    return "validation";
  }
  if (words.includes("train")) return "train";
  return undefined;
}

/** The MMLU subject a file belongs to (a path segment, or the file name's prefix), if medical. */
function mmluSubject(path: string): string | undefined {
  const parts = path.split("/");
  return MMLU_MEDICAL_SUBJECTS.find((s) =>
    parts.slice(0, -1).includes(s) || basename(path).startsWith(`${s}_`) || basename(path).startsWith(`${s}-`)
  );
}

/** Data files of a repository, restricted to the benchmark's configuration when the repository has several. */
function dataFiles(name: Exclude<BenchmarkName, "demo">, files: string[]): string[] {
  const data = files.filter((f) =>
    DATA_FILE.test(f) && !/(^|\/)(dataset_infos?|dataset_dict|state|config)\.json$/.test(f) &&
    splitOf(f) !== undefined
  );
  const prefer = (configs: string[]) => {
    for (const c of configs) {
      const hit = data.filter((f) => f.split("/").includes(c));
      if (hit.length > 0) return hit;
    }
    return data;
  };
  switch (name) {
    case "medqa":
      return prefer(["med_qa_en_4options_source", "med_qa_en_source"]);
    case "pubmedqa":
      return prefer(["pubmed_qa_labeled_fold0_source", "pqa_labeled"]);
    case "mmlu":
      return data.filter((f) => mmluSubject(f) !== undefined);
    case "medmcqa":
      return data;
  }
}

/** Which split is evaluated and which gives demonstrations. */
function roles(name: Exclude<BenchmarkName, "demo">): { test: Split; demos: Split[] } {
  if (name === "medmcqa") return { test: "validation", demos: ["train"] }; // the test split is unlabeled
  if (name === "mmlu") return { test: "test", demos: ["validation", "train"] }; // dev (5 per subject) first
  return { test: "test", demos: ["train"] };
}

/**
 * The files of a hub dataset repository that evaluating `name` needs: the evaluated split and the
 * demonstration split, of the benchmark's configuration (bigbio's `*_source`), MMLU's medical subjects only.
 *
 * @example
 * ```ts
 * import { hubBenchmarkFiles } from "./hub.ts";
 * hubBenchmarkFiles("medmcqa", ["README.md", "data/train-0.parquet", "data/validation-0.parquet", "data/test-0.parquet"]);
 * // ["data/train-0.parquet", "data/validation-0.parquet"]
 * ```
 */
export function hubBenchmarkFiles(name: Exclude<BenchmarkName, "demo">, files: string[]): string[] {
  const r = roles(name);
  const data = dataFiles(name, files);
  const demo = r.demos.find((s) => data.some((f) => splitOf(f) === s));
  return data.filter((f) => splitOf(f) === r.test || splitOf(f) === demo);
}

/** Rows of a Parquet, JSON Lines or JSON (array, or JSON Lines named .json) file, with their 1-based numbers. */
async function readRows(path: string): Promise<[number, unknown][]> {
  if (path.endsWith(".parquet")) return (await readParquetRows(path)).map((r, i) => [i + 1, r]);
  const text = await readBenchmarkFile(path);
  if (path.endsWith(".json") && text.trimStart().startsWith("[")) {
    let all: unknown[];
    try {
      all = JSON.parse(text) as unknown[];
    } catch (e) {
      throw new BenchmarkFormatError(path, `not valid JSON (${(e as Error).message})`);
    }
    return all.map((r, i) => [i + 1, r]);
  }
  return parseJsonLines(text, path);
}

/** Rows as JSON Lines text, one row per line, so `file:N` in errors names row N. */
function asJsonLines(
  rows: [number, unknown][],
  map: (o: Record<string, unknown>, where: string) => unknown,
  file: string,
) {
  return rows.map(([n, r]) => JSON.stringify(map(asRecord(r, `${file}:${n}`), `${file}:${n}`))).join("\n");
}

/** bigbio `options: [{key, value}]` → jind11 `options: {A: …}`. */
function medqaRow(o: Record<string, unknown>, where: string): unknown {
  if (!Array.isArray(o.options)) return o;
  const options: Record<string, string> = {};
  for (const kv of o.options) {
    const e = asRecord(kv, `${where} (options)`);
    options[stringField(e, "key", where)] = stringField(e, "value", where);
  }
  return { ...o, options };
}

function pubmedqaRow(o: Record<string, unknown>, where: string, n: number): MCQuestion {
  if ("QUESTION" in o) {
    const pmid = String(o.pubid ?? o.PMID ?? o.id ?? n);
    return pubmedqaQuestion(pmid, o, where);
  }
  // qiaojin/PubMedQA: {pubid, question, context: {contexts}, final_decision}; flat `contexts` in some copies
  const contexts = "contexts" in o ? o.contexts : asRecord(o.context, `${where} (context)`).contexts;
  return pubmedqaQuestion(String(o.pubid ?? n), {
    QUESTION: o.question,
    CONTEXTS: contexts,
    final_decision: o.final_decision,
  }, where);
}

function mmluRow(o: Record<string, unknown>, where: string, subject: string, n: number): MCQuestion {
  if ("input" in o) {
    const f = ["input", "A", "B", "C", "D", "target"].map((k) => stringField(o, k, where));
    return mmluQuestion(f, where, subject, n);
  }
  const choices = o.choices;
  if (!Array.isArray(choices) || choices.length !== 4 || choices.some((c) => typeof c !== "string")) {
    throw new BenchmarkFormatError(where, `neither lukaemon ("input", "A"–"D") nor cais ("choices" ×4) MMLU`);
  }
  const answer = o.answer;
  const letter = typeof answer === "number" ? "ABCD"[answer] ?? String(answer) : String(answer);
  return mmluQuestion([stringField(o, "question", where), ...choices as string[], letter], where, subject, n);
}

/** Questions of the given files of one split. */
async function questions(
  name: Exclude<BenchmarkName, "demo">,
  dir: string,
  files: string[],
  notes: string[],
): Promise<MCQuestion[]> {
  const out: MCQuestion[] = [];
  for (const f of files) {
    const path = `${dir}/${f}`;
    const rows = await readRows(path);
    switch (name) {
      case "medqa":
        out.push(...parseMedQA(asJsonLines(rows, medqaRow, path), path));
        break;
      case "medmcqa": {
        const parsed = parseMedMCQA(asJsonLines(rows, (o) => o, path), path);
        notes.push(`${f}: ${parsed.note}`);
        if (parsed.unlabeled > 0) notes.push(`${f}: ${parsed.unlabeled} unlabeled rows skipped`);
        out.push(...parsed.questions);
        break;
      }
      case "pubmedqa":
        for (const [n, r] of rows) out.push(pubmedqaRow(asRecord(r, `${path}:${n}`), `${path}:${n}`, n));
        break;
      case "mmlu": {
        const subject = mmluSubject(f)!;
        for (const [n, r] of rows) out.push(mmluRow(asRecord(r, `${path}:${n}`), `${path}:${n}`, subject, n));
        break;
      }
    }
  }
  return out;
}

/**
 * Loads a benchmark from a hub dataset snapshot directory (`files`: the repository's file list; the ones
 * {@linkcode hubBenchmarkFiles} picks must be in `dir`). `repo` is named in the notes.
 *
 * @example
 * ```ts ignore
 * import { loadHubBenchmark } from "./hub.ts";
 * const b = await loadHubBenchmark("medmcqa", snapshotDir, files, "openlifescienceai/medmcqa");
 * ```
 */
export async function loadHubBenchmark(
  name: Exclude<BenchmarkName, "demo">,
  dir: string,
  files: string[],
  repo: string,
): Promise<Benchmark> {
  const r = roles(name);
  const picked = hubBenchmarkFiles(name, files);
  const testFiles = picked.filter((f) => splitOf(f) === r.test);
  if (testFiles.length === 0) {
    throw new BenchmarkFormatError(
      dir,
      `hub dataset ${repo} has no ${r.test} split file for ${name} (data files: ${
        dataFiles(name, files).join(", ") || "none"
      })`,
    );
  }
  const demoFiles = picked.filter((f) => splitOf(f) !== r.test);
  const notes = [`hub dataset ${repo}: ${r.test} split ${testFiles.join(", ")}`];
  const test = await questions(name, dir, testFiles, notes);
  if (test.length === 0) {
    throw new BenchmarkFormatError(dir, `hub dataset ${repo}: no labeled ${r.test} question`);
  }
  const train = await questions(name, dir, demoFiles, notes);
  notes.push(
    demoFiles.length > 0 ? `demonstrations: ${demoFiles.join(", ")}` : "no train split: 0-shot only",
  );
  if (name === "mmlu") {
    const present = new Set(test.map((q) => q.subject));
    const missing = MMLU_MEDICAL_SUBJECTS.filter((s) => !present.has(s));
    notes.push(`subjects ${[...present].join(", ")}`);
    if (missing.length > 0) notes.push(`MISSING subjects (not evaluated): ${missing.join(", ")}`);
  }
  return {
    name,
    test,
    train,
    notes,
    demosBySubject: name === "mmlu",
    ...(name === "pubmedqa" ? { classes: 3 } : {}),
  };
}
