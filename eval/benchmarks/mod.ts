/**
 * The benchmark registry: names, and loading a benchmark's test and train (demonstration) questions from the
 * files as published, or the generated demo set.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import type { MCQuestion } from "../question.ts";
import { BenchmarkFormatError } from "../errors.ts";
import { loadMedQA } from "./medqa.ts";
import { loadMedMCQA } from "./medmcqa.ts";
import { loadPubMedQA } from "./pubmedqa.ts";
import { loadMmlu, MMLU_MEDICAL_SUBJECTS } from "./mmlu.ts";
import { DEMO_SEED, demoQuestions } from "./demo.ts";

export * from "./medqa.ts";
export * from "./medmcqa.ts";
export * from "./pubmedqa.ts";
export * from "./mmlu.ts";
export * from "./demo.ts";
export * from "./hub.ts";

/**
 * The benchmarks `deno task eval` knows.
 *
 * @example
 * ```ts
 * import { BENCHMARK_NAMES } from "./mod.ts";
 * console.log(BENCHMARK_NAMES.join(", ")); // medqa, medmcqa, pubmedqa, mmlu, demo
 * ```
 */
export const BENCHMARK_NAMES = ["medqa", "medmcqa", "pubmedqa", "mmlu", "demo"] as const;

/**
 * One benchmark name.
 *
 * @example
 * ```ts
 * import type { BenchmarkName } from "./mod.ts";
 * const b: BenchmarkName = "pubmedqa";
 * ```
 */
export type BenchmarkName = typeof BENCHMARK_NAMES[number];

/**
 * Whether a string names a known benchmark.
 *
 * @example
 * ```ts
 * import { isBenchmarkName } from "./mod.ts";
 * isBenchmarkName("medqa"); // true
 * isBenchmarkName("usmle"); // false
 * ```
 */
export function isBenchmarkName(name: string): name is BenchmarkName {
  return (BENCHMARK_NAMES as readonly string[]).includes(name);
}

/**
 * A loaded benchmark.
 *
 * @example
 * ```ts
 * import type { Benchmark } from "./mod.ts";
 * const b: Benchmark = { name: "demo", test: [], train: [], notes: [], demosBySubject: false };
 * ```
 */
export interface Benchmark {
  /** Benchmark name (selects the system text). */
  name: BenchmarkName;
  /** Questions evaluated. */
  test: MCQuestion[];
  /** Questions k-shot demonstrations are drawn from (may be empty when no train file was found). */
  train: MCQuestion[];
  /** What was loaded from where, and detections (e.g. MedMCQA's `cop` base). */
  notes: string[];
  /** Draw demonstrations from the question's own subject (MMLU: `{subject}_dev.csv`). */
  demosBySubject: boolean;
  /** Number of answer classes for macro-F1 (PubMedQA: 3). */
  classes?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new BenchmarkFormatError(path, "file or directory not found");
    }
    throw e;
  }
}

// A file name and its other JSON spelling (releases and exports name the same file .json or .jsonl).
function jsonSpellings(name: string): string[] {
  if (name.endsWith(".jsonl")) return [name, name.slice(0, -1)];
  if (name.endsWith(".json")) return [name, `${name}l`];
  return [name];
}

/** The first of `names` (each also in its other JSON spelling) present in `dir`, or undefined. */
async function findFirst(dir: string, names: string[]): Promise<string | undefined> {
  for (const n of names.flatMap(jsonSpellings)) if (await exists(join(dir, n))) return join(dir, n);
  return undefined;
}

async function firstOf(dir: string, names: string[], what: string): Promise<string> {
  const found = await findFirst(dir, names);
  if (found !== undefined) return found;
  throw new BenchmarkFormatError(dir, `no ${what} (looked for ${names.flatMap(jsonSpellings).join(", ")})`);
}

async function loadMedQABench(data: string): Promise<Benchmark> {
  const test = (await isDir(data))
    ? await firstOf(data, [
      "4_options/phrases_no_exclude_test.jsonl",
      "questions/US/4_options/phrases_no_exclude_test.jsonl",
      "test.jsonl",
      "questions/US/test.jsonl",
    ], "MedQA test file")
    : data;
  const trainName = basename(test).replace("test", "train");
  const trainPath = trainName === basename(test) ? undefined : await findFirst(dirname(test), [trainName]);
  const notes = [`test: ${test}`];
  let train: MCQuestion[] = [];
  if (trainPath !== undefined) {
    train = await loadMedQA(trainPath);
    notes.push(`train (demonstrations): ${trainPath}`);
  } else notes.push(`no train file next to the test file (${join(dirname(test), trainName)}): 0-shot only`);
  return { name: "medqa", test: await loadMedQA(test), train, notes, demosBySubject: false };
}

async function loadMedMCQABench(data: string): Promise<Benchmark> {
  const dev = (await isDir(data))
    ? await firstOf(data, ["dev.json", "validation.json"], "MedMCQA dev file")
    : data;
  const file = await loadMedMCQA(dev);
  const notes = [`test: ${dev} (dev split, as the paper)`, file.note];
  if (file.unlabeled > 0) notes.push(`${file.unlabeled} unlabeled rows skipped (cop −1 or null)`);
  if (file.questions.length === 0) {
    throw new BenchmarkFormatError(dev, "no labeled question (the HF test split is unlabeled: use dev)");
  }
  const found = await findFirst(dirname(dev), ["train.json"]);
  const trainPath = found === dev ? undefined : found;
  let train: MCQuestion[] = [];
  if (trainPath !== undefined) {
    const t = await loadMedMCQA(trainPath);
    train = t.questions;
    notes.push(`train (demonstrations): ${trainPath}; ${t.note}`);
  } else notes.push(`no ${join(dirname(dev), "train.json")} (or .jsonl): 0-shot only`);
  return { name: "medmcqa", test: file.questions, train, notes, demosBySubject: false };
}

async function loadPubMedQABench(data: string): Promise<Benchmark> {
  const dir = (await isDir(data)) ? data : dirname(data);
  const ori = (await isDir(data)) ? await firstOf(dir, ["ori_pqal.json"], "PubMedQA ori_pqal.json") : data;
  const keys = await firstOf(dir, ["test_ground_truth.json", "test_set.json"], "PubMedQA test keys");
  const { test, train } = await loadPubMedQA(ori, keys);
  return {
    name: "pubmedqa",
    test,
    train,
    notes: [`questions: ${ori}`, `test split: keys of ${keys}`, `train (demonstrations): the other PMIDs`],
    demosBySubject: false,
    classes: 3,
  };
}

async function loadMmluBench(data: string): Promise<Benchmark> {
  if (!(await isDir(data))) {
    throw new BenchmarkFormatError(data, "MMLU --data must be a directory of CSV files");
  }
  const present: string[] = [], missing: string[] = [];
  for (const s of MMLU_MEDICAL_SUBJECTS) {
    const found = await exists(join(data, "test", `${s}_test.csv`)) ||
      await exists(join(data, `${s}_test.csv`));
    (found ? present : missing).push(s);
  }
  if (present.length === 0) {
    throw new BenchmarkFormatError(
      data,
      `no {subject}_test.csv for any of ${MMLU_MEDICAL_SUBJECTS.join(", ")}`,
    );
  }
  const test = await loadMmlu(data, "test", present);
  const notes = [`test: ${data}, subjects ${present.join(", ")}`];
  if (missing.length > 0) notes.push(`MISSING subjects (not evaluated): ${missing.join(", ")}`);
  let train: MCQuestion[] = [];
  try {
    train = await loadMmlu(data, "dev", present);
    notes.push("demonstrations: {subject}_dev.csv of the same subject");
  } catch (e) {
    if (!(e instanceof BenchmarkFormatError)) throw e;
    notes.push(`no dev files (${e.message}): 0-shot only`);
  }
  return { name: "mmlu", test, train, notes, demosBySubject: true };
}

/**
 * Options of {@linkcode loadBenchmark}.
 *
 * @example
 * ```ts
 * import type { LoadBenchmarkOptions } from "./mod.ts";
 * const o: LoadBenchmarkOptions = { systems: "cardiovascular,respiratory" };
 * ```
 */
export interface LoadBenchmarkOptions {
  /**
   * Demo set only: `all` (default) or a comma-separated list of organ systems; questions and distractors then
   * come from those systems' conditions (for a model pretrained with `data.systems`).
   */
  systems?: string;
}

/**
 * Loads a benchmark. `data` is a file or directory of the published release (ignored for `demo`, required for
 * the others): MedQA a `.jsonl` or the release directory (4-option file preferred), MedMCQA `dev.json` or its
 * directory, PubMedQA the directory holding `ori_pqal.json` and `test_ground_truth.json` (or `test_set.json`),
 * MMLU the `data` directory (`test/`, `dev/`, or flat).
 *
 * @example
 * ```ts
 * import { loadBenchmark } from "./mod.ts";
 * const demo = await loadBenchmark("demo");
 * console.log(demo.test.length > 0); // true
 * ```
 */
export async function loadBenchmark(
  name: BenchmarkName,
  data?: string,
  options: LoadBenchmarkOptions = {},
): Promise<Benchmark> {
  if (name === "demo") {
    const systems = options.systems ?? "all";
    const { test, train } = demoQuestions(DEMO_SEED, systems);
    return {
      name,
      test,
      train,
      notes: [
        "DEMO SET generated from the embedded knowledge base: a toolkit check, not a medical benchmark" +
        (systems === "all" ? "" : ` (organ systems: ${systems})`),
      ],
      demosBySubject: false,
    };
  }
  if (options.systems !== undefined) {
    throw new Error(`--systems applies to the demo set only, not to ${name}`);
  }
  if (data === undefined) throw new Error(`benchmark "${name}" needs --data (a file or directory)`);
  switch (name) {
    case "medqa":
      return await loadMedQABench(data);
    case "medmcqa":
      return await loadMedMCQABench(data);
    case "pubmedqa":
      return await loadPubMedQABench(data);
    case "mmlu":
      return await loadMmluBench(data);
  }
}
