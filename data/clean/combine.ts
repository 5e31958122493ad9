/**
 * `deno task data combine`: concatenates cleaned sources into one training JSONL and one validation JSONL,
 * each record tagged with its `subset`, with a seeded per-document split (Meditron: 3% of papers and
 * abstracts, 5% of guidelines, no replay in validation). Every subset draws from its own generator
 * (seed mixed with the subset name), so adding a subset does not move the others' documents; a subset
 * with a positive fraction and at least two documents always gives validation at least one.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { mulberry32 } from "../gpt_dataset.ts";
import { numberFlag, pairFlag } from "./args.ts";
import { hash53 } from "./dedup.ts";
import {
  AtomicWriter,
  JsonlError,
  JsonlReader,
  type JsonObject,
  parseJsonlLine,
  refuseOverwritingInputs,
  stringField,
  writeJsonAtomic,
} from "./jsonl.ts";

/** Meditron's validation fractions by subset. */
export const MEDITRON_VALID_FRACTIONS: Readonly<Record<string, number>> = {
  guidelines: 0.05,
  papers: 0.03,
  abstracts: 0.03,
  replay: 0,
};

/** Validation fraction of subsets not in the table. */
export const DEFAULT_VALID_FRACTION = 0.03;

/** One input of a combine run. */
export interface CombineInput {
  /** Subset name written to each record (`guidelines`, `papers`, …). */
  subset: string;
  /** Cleaned JSONL (records with a string `text`). */
  path: string;
}

/** Options of {@linkcode combineFiles}. */
export interface CombineOptions {
  /** Inputs in output order. */
  inputs: readonly CombineInput[];
  /** Training JSONL. */
  output: string;
  /** Validation JSONL (default: the output with `.jsonl` replaced by `.validation.jsonl`). */
  validation?: string;
  /** Report path (default `{output}.report.json`). */
  report?: string;
  /** Validation fraction by subset, over {@linkcode MEDITRON_VALID_FRACTIONS}. */
  validFractions?: Readonly<Record<string, number>>;
  /** Seed of the split (default 1234). */
  seed?: number;
  /** Count malformed lines and records without `text` instead of failing. */
  skipBad?: boolean;
}

/** Counts of one subset. */
export interface SubsetCounts {
  /** Input path. */
  input: string;
  /** Validation fraction used. */
  validFraction: number;
  /** Records read. */
  read: number;
  /** Records written to training. */
  train: number;
  /** Records written to validation. */
  validation: number;
  /** Malformed lines skipped. */
  badLines: number;
  /** Records without a string `text` skipped. */
  missingText: number;
}

/** What a combine run did; also written as JSON next to the output. */
export interface CombineReport {
  /** Always `combine`. */
  command: "combine";
  /** Training JSONL. */
  output: string;
  /** Validation JSONL. */
  validation: string;
  /** Report path. */
  report: string;
  /** Seed of the split. */
  seed: number;
  /** Counts by subset, in input order. */
  subsets: Record<string, SubsetCounts>;
  /** Training records. */
  train: number;
  /** Validation records. */
  validationDocs: number;
  /** Wall time. */
  seconds: number;
  /** True when `--help` was asked: nothing ran and nothing was written. */
  help?: true;
}

/**
 * The validation path that goes with a training output: `x.jsonl` → `x.validation.jsonl`.
 *
 * @example
 * ```ts
 * import { validationPath } from "./combine.ts";
 * console.log(validationPath("out/gap_replay.jsonl")); // "out/gap_replay.validation.jsonl"
 * ```
 */
export function validationPath(output: string): string {
  return output.endsWith(".jsonl") ? output.slice(0, -6) + ".validation.jsonl" : output + ".validation";
}

/**
 * The subset a file name suggests (`…guidelines…`, `…abstracts…`, `…papers…` or `…s2orc…`, `…replay…`), or
 * `null`.
 *
 * @example
 * ```ts
 * import { subsetFromPath } from "./combine.ts";
 * console.log(subsetFromPath("clean/s2orc_pmc.jsonl")); // "papers"
 * ```
 */
export function subsetFromPath(path: string): string | null {
  const name = path.slice(path.lastIndexOf("/") + 1).toLowerCase();
  if (name.includes("guideline")) return "guidelines";
  if (name.includes("abstract")) return "abstracts";
  if (name.includes("paper") || name.includes("s2orc")) return "papers";
  if (name.includes("replay")) return "replay";
  return null;
}

/**
 * Combines cleaned sources (see the module doc). Both outputs are written atomically; on error neither
 * is created.
 *
 * @example
 * ```ts
 * import { combineFiles } from "./combine.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/g.jsonl`, '{"text": "a"}\n{"text": "b"}\n');
 * const r = await combineFiles({ inputs: [{ subset: "guidelines", path: `${dir}/g.jsonl` }], output: `${dir}/all.jsonl` });
 * console.log(r.train + r.validationDocs); // 2
 * ```
 */
export async function combineFiles(options: CombineOptions): Promise<CombineReport> {
  const t0 = performance.now();
  if (options.inputs.length === 0) throw new Error("combine needs at least one input");
  const seed = options.seed ?? 1234;
  const validation = options.validation ?? validationPath(options.output);
  const reportPath = options.report ?? `${options.output}.report.json`;
  const fractions = { ...MEDITRON_VALID_FRACTIONS, ...(options.validFractions ?? {}) };
  const subsets: Record<string, SubsetCounts> = {};
  for (const { subset } of options.inputs) {
    if (subsets[subset]) throw new Error(`subset '${subset}' given twice`);
    const f = fractions[subset] ?? DEFAULT_VALID_FRACTION;
    if (!(f >= 0 && f <= 1)) {
      throw new Error(`validation fraction of '${subset}' must be in [0, 1], got ${f}`);
    }
    subsets[subset] = {
      input: "",
      validFraction: f,
      read: 0,
      train: 0,
      validation: 0,
      badLines: 0,
      missingText: 0,
    };
  }
  await refuseOverwritingInputs(
    options.inputs.map(({ path }) => ["--input", path] as const),
    [["--output", options.output], ["--validation", validation], ["--report", reportPath]],
  );
  const train = await AtomicWriter.open(options.output);
  let valid: AtomicWriter | null = null;
  try {
    valid = await AtomicWriter.open(validation);
    for (const { subset, path } of options.inputs) {
      const counts = subsets[subset];
      counts.input = path;
      const rand = mulberry32((seed ^ hash53(subset)) >>> 0);
      let pending: string | null = null; // the last record waits: it may be forced into validation
      const writeOne = async (json: string, toValid: boolean): Promise<void> => {
        if (toValid) counts.validation++;
        else counts.train++;
        await (toValid ? valid! : train).write(json);
      };
      for await (const { text, line } of new JsonlReader(path)) {
        let record: JsonObject;
        try {
          record = parseJsonlLine(text, path, line);
          stringField(record, ["text"], path, line);
        } catch (e) {
          if (!(e instanceof JsonlError) || !options.skipBad) throw e;
          if (e.kind === "bad_line") counts.badLines++;
          else counts.missingText++;
          continue;
        }
        counts.read++;
        if (pending !== null) await writeOne(pending, rand() < counts.validFraction);
        pending = JSON.stringify({ ...record, subset }) + "\n";
      }
      if (pending !== null) {
        const force = counts.validFraction > 0 && counts.validation === 0 && counts.read >= 2;
        const draw = rand() < counts.validFraction;
        await writeOne(pending, force || draw);
      }
    }
    await valid.commit();
    await train.commit();
  } catch (e) {
    await train.abort();
    await valid?.abort();
    await Deno.remove(validation).catch(() => {}); // committed before a failing training commit
    throw e;
  }
  const totals = Object.values(subsets);
  const report: CombineReport = {
    command: "combine",
    output: options.output,
    validation,
    report: reportPath,
    seed,
    subsets,
    train: totals.reduce((a, s) => a + s.train, 0),
    validationDocs: totals.reduce((a, s) => a + s.validation, 0),
    seconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(reportPath, report);
  return report;
}

/** Help text of `data combine`. */
export const HELP_COMBINE: string =
  `Usage: deno task data combine --input SUBSET=FILE [--input SUBSET=FILE ...] --output FILE [options]

Combines cleaned sources into one training JSONL (each record gets a "subset" field) and one validation
JSONL, with a seeded per-document split. Defaults are Meditron's: 5% of guidelines, 3% of papers and
abstracts, no replay in validation; other subsets ${
    DEFAULT_VALID_FRACTION * 100
  }%. Counts go to OUTPUT.report.json.
Both outputs are written atomically.

Options:
  --input SUBSET=FILE      a cleaned JSONL and its subset name (repeatable; FILE alone infers the subset
                           from the name: guidelines, abstracts, papers/s2orc, replay)
  --output FILE            training JSONL (required)
  --validation FILE        validation JSONL (default: OUTPUT with .jsonl → .validation.jsonl)
  --report FILE            report path (default: OUTPUT.report.json)
  --valid SUBSET=FRACTION  validation fraction of a subset, in [0, 1] (repeatable)
  --seed N                 seed of the split (default 1234)
  --skip-bad               count malformed lines and records without text instead of failing
  -h, --help               show this help

Examples:
  deno task data combine --input guidelines=clean/guidelines.jsonl --input papers=clean/papers.jsonl \\
    --input abstracts=clean/abstracts.jsonl --input replay=clean/replay.jsonl --output out/gap_replay.jsonl
  deno task data combine --input clean/guidelines.jsonl --valid guidelines=0.1 --seed 7 --output out/g.jsonl
`;

/**
 * Combines cleaned sources into one JSONL with a `subset` field and a seeded train/validation split. With
 * `--help` it prints {@linkcode HELP_COMBINE} and resolves to an empty report with `help: true`.
 *
 * @example
 * ```ts
 * import { combineCommand } from "./combine.ts";
 * const r = await combineCommand(["--input", "guidelines=clean/g.jsonl", "--output", "out/all.jsonl"]);
 * console.log(r.train, r.validationDocs);
 * ```
 */
export async function combineCommand(args: string[]): Promise<CombineReport> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      input: { type: "string", multiple: true },
      output: { type: "string" },
      validation: { type: "string" },
      report: { type: "string" },
      valid: { type: "string", multiple: true },
      seed: { type: "string" },
      "skip-bad": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP_COMBINE);
    return {
      command: "combine",
      output: "",
      validation: "",
      report: "",
      seed: 0,
      subsets: {},
      train: 0,
      validationDocs: 0,
      seconds: 0,
      help: true,
    };
  }
  if (positionals.length) throw new Error(`unexpected argument '${positionals[0]}' (see --help)`);
  if (!values.output) throw new Error("--output is required (see --help)");
  if (!values.input?.length) throw new Error("at least one --input SUBSET=FILE is required (see --help)");
  const inputs = values.input.map((v): CombineInput => {
    if (v.includes("=")) {
      const [subset, path] = pairFlag("--input", v);
      return { subset, path };
    }
    const subset = subsetFromPath(v);
    if (!subset) throw new Error(`--input ${v}: cannot infer the subset from the name; write SUBSET=${v}`);
    return { subset, path: v };
  });
  const validFractions: Record<string, number> = {};
  for (const v of values.valid ?? []) {
    const [subset, f] = pairFlag("--valid", v);
    validFractions[subset] = numberFlag(`--valid ${subset}`, f, { min: 0, max: 1 })!;
  }
  const report = await combineFiles({
    inputs,
    output: values.output,
    validation: values.validation,
    report: values.report,
    validFractions,
    seed: numberFlag("--seed", values.seed, { integer: true, min: 0 }),
    skipBad: values["skip-bad"] ?? false,
  });
  const per = Object.entries(report.subsets).map(([k, s]) => `${k} ${s.train}+${s.validation}`).join(", ");
  console.error(
    `combine: ${report.train} train + ${report.validationDocs} validation (${per}) → ${report.output}, ${report.validation}`,
  );
  return report;
}
