/**
 * `deno task data clean`: argument parsing, help text and progress for {@linkcode cleanFile}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { numberFlag } from "./args.ts";
import {
  CLEAN_SOURCES,
  cleanFile,
  type CleanFileOptions,
  type CleanReport,
  type CleanSource,
} from "./clean_file.ts";
import { parseTruncationRules, type TruncationRules } from "./guideline_sources.ts";
import { MEDITRON_KEEP_RATE } from "./replay.ts";

/** Help text of `data clean`. */
export const HELP_CLEAN: string =
  `Usage: deno task data clean --source SOURCE --input FILE --output FILE [options]

Cleans one source of the GAP-Replay corpus as Meditron did, streaming JSONL in and out. The output is
written atomically (nothing is left behind on failure) and the counts of kept and dropped documents, by
reason, go to OUTPUT.report.json.

Sources:
  guidelines  {source, title, raw_text | text, url}: per-source truncation (start/drop/stop markers), URLs,
              reference markup, bullets, headings and blank lines normalised, English only, minimum
              length, exact dedup on the first 500 characters; adds clean_text (and text)
  abstracts   {corpusid, title, abstract | text}: title + "\\n" + abstract, URLs and references removed,
              English only, dedup by corpusid, minus the papers given by --papers
  papers      S2ORC {corpusid, content: {text, annotations}}: markdown with [bib_ref] [fig_ref] [fig]
              [table] [formula] tokens, without author block and bibliography; English only
  replay      {text}: a seeded sample at --keep-rate (Meditron: ${MEDITRON_KEEP_RATE})

Options:
  --source NAME           ${CLEAN_SOURCES.join(" | ")} (required)
  --input FILE            input JSONL (required); or a hub dataset: hf://datasets/org/name[@rev]/FILE.jsonl,
                          or org/name when it holds one .jsonl file (fetched into the hub cache)
  --output FILE           output JSONL (required)
  --report FILE           report path (default: OUTPUT.report.json)
  --papers FILE           abstracts: full-text JSONL whose corpusids are excluded
  --guideline-source KEY  guidelines: use the truncation rules of KEY for every record
  --rules FILE            guidelines: JSON rules by source, over the built-in table, e.g.
                          {"mysoc": {"start": ["introduction"], "stop": ["appendix"], "minWords": 50}}
  --keep-rate R           replay: probability of keeping each record (required for replay)
  --seed N                seed of the replay draws and of the MinHash functions (default 1234)
  --lang CODE             keep only this language, ISO 639-1 (default en; replay: none); none keeps all
  --lang-threshold S      minimum language score in [0, 1] (default 0: the top language must match)
  --min-words N           minimum words (default: guidelines 30, abstracts 10, papers 50, replay 0)
  --dedup-chars N         characters of the exact-dedup key (default 500; 0 turns exact dedup off)
  --near-dedup J          also drop near-duplicates: MinHash Jaccard ≥ J, in (0, 1] (e.g. 0.8)
  --minhash-perm N        MinHash functions (default 128)
  --shingle N             words per shingle (default 5)
  --lsh-bands N           LSH bands (default: the best banding for J)
  --skip-bad              count malformed lines and missing fields in the report instead of failing
  --quiet                 no progress lines on stderr
  -h, --help              show this help

Examples:
  deno task data clean --source guidelines --input raw/guidelines.jsonl --output clean/guidelines.jsonl
  deno task data clean --source papers --input raw/s2orc.jsonl --output clean/papers.jsonl --near-dedup 0.8
  deno task data clean --source abstracts --input raw/abstracts.jsonl --papers raw/s2orc.jsonl \\
    --output clean/abstracts.jsonl
  deno task data clean --source replay --input redpajama.jsonl --output clean/replay.jsonl --keep-rate 0.0004
`;

async function parseCleanArgs(args: string[]): Promise<CleanFileOptions & { quiet: boolean } | null> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      source: { type: "string" },
      input: { type: "string" },
      output: { type: "string" },
      report: { type: "string" },
      papers: { type: "string" },
      "guideline-source": { type: "string" },
      rules: { type: "string" },
      "keep-rate": { type: "string" },
      seed: { type: "string" },
      lang: { type: "string" },
      "lang-threshold": { type: "string" },
      "min-words": { type: "string" },
      "dedup-chars": { type: "string" },
      "near-dedup": { type: "string" },
      "minhash-perm": { type: "string" },
      shingle: { type: "string" },
      "lsh-bands": { type: "string" },
      "skip-bad": { type: "boolean" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return null;
  if (positionals.length) throw new Error(`unexpected argument '${positionals[0]}' (see --help)`);
  for (const flag of ["source", "input", "output"] as const) {
    if (!values[flag]) throw new Error(`--${flag} is required (see --help)`);
  }
  const source = values.source as CleanSource;
  if (!CLEAN_SOURCES.includes(source)) {
    throw new Error(`--source must be one of ${CLEAN_SOURCES.join(", ")}, got '${values.source}'`);
  }
  if (values["keep-rate"] !== undefined && source !== "replay") {
    throw new Error("--keep-rate applies to replay only");
  }
  for (const flag of ["guideline-source", "rules"] as const) {
    if (values[flag] !== undefined && source !== "guidelines") {
      throw new Error(`--${flag} applies to guidelines only`);
    }
  }
  let sources: Record<string, TruncationRules> | undefined;
  if (values.rules !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(values.rules));
    } catch (e) {
      throw new Error(`--rules ${values.rules}: ${(e as Error).message}`);
    }
    sources = parseTruncationRules(json, values.rules);
  }
  const seed = numberFlag("--seed", values.seed, { integer: true, min: 0 }) ?? 1234;
  const nearThreshold = numberFlag("--near-dedup", values["near-dedup"], { min: 1e-9, max: 1 });
  const lang = values.lang === undefined
    ? undefined
    : values.lang === "none"
    ? null
    : values.lang.toLowerCase();
  if (typeof lang === "string" && !/^[a-z]{2,3}$/.test(lang)) {
    throw new Error(`--lang expects an ISO 639-1 code or 'none', got '${values.lang}'`);
  }
  return {
    source,
    input: values.input!,
    output: values.output!,
    report: values.report,
    papers: values.papers,
    skipBad: values["skip-bad"] ?? false,
    quiet: values.quiet ?? false,
    options: {
      source: values["guideline-source"],
      sources,
      keepRate: numberFlag("--keep-rate", values["keep-rate"], { min: 0, max: 1 }),
      seed,
      language: lang,
      languageThreshold: numberFlag("--lang-threshold", values["lang-threshold"], { min: 0, max: 1 }),
      minWords: numberFlag("--min-words", values["min-words"], { integer: true, min: 0 }),
      dedupChars: numberFlag("--dedup-chars", values["dedup-chars"], { integer: true, min: 0 }),
      nearDedup: nearThreshold === undefined ? undefined : {
        threshold: nearThreshold,
        numPerm: numberFlag("--minhash-perm", values["minhash-perm"], { integer: true, min: 2, max: 4096 }),
        shingleSize: numberFlag("--shingle", values.shingle, { integer: true, min: 1, max: 64 }),
        bands: numberFlag("--lsh-bands", values["lsh-bands"], { integer: true, min: 1 }),
        seed,
      },
    },
  };
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/**
 * Runs `data clean` with CLI args; resolves to the report object it also writes. With `--help` it prints
 * {@linkcode HELP_CLEAN} and resolves to an empty report with `help: true`. Bad arguments and bad input
 * reject with an error whose message names the flag or the `file:line`.
 *
 * @example
 * ```ts
 * import { cleanCommand } from "./command.ts";
 * const report = await cleanCommand(["--source", "guidelines", "--input", "g.jsonl", "--output", "out/g.jsonl"]);
 * console.log(report.kept, report.dropped);
 * ```
 */
export async function cleanCommand(args: string[]): Promise<CleanReport> {
  const parsed = await parseCleanArgs(args);
  if (parsed === null) {
    console.log(HELP_CLEAN);
    return {
      command: "clean",
      source: "guidelines",
      input: "",
      output: "",
      report: "",
      read: 0,
      kept: 0,
      dropped: {},
      invalidUtf8Lines: 0,
      bytesIn: 0,
      bytesOut: 0,
      seconds: 0,
      mbPerSecond: 0,
      options: {},
      help: true,
    };
  }
  const { quiet, ...options } = parsed;
  const t0 = performance.now();
  if (!quiet) {
    options.onProgress = (bytes, counts) => {
      const s = (performance.now() - t0) / 1000;
      console.error(
        `clean ${options.source}: ${mb(bytes)} read, ${counts.kept} kept of ${counts.read} (${
          (bytes / 1e6 / s).toFixed(1)
        } MB/s)`,
      );
    };
  }
  const report = await cleanFile(options);
  if (!quiet) {
    const dropped = Object.entries(report.dropped).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    console.error(
      `clean ${report.source}: kept ${report.kept} of ${report.read} (dropped: ${dropped}) → ${report.output}` +
        (report.invalidUtf8Lines
          ? `, ${report.invalidUtf8Lines} lines had invalid UTF-8 (replaced with U+FFFD)`
          : "") +
        ` [${mb(report.bytesIn)} in ${report.seconds.toFixed(1)} s, ${report.mbPerSecond.toFixed(1)} MB/s]`,
    );
  }
  return report;
}
