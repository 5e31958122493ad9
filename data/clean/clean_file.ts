/**
 * The streaming cleaning driver: reads a JSONL input line by line, cleans each record with the source's
 * {@linkcode RecordCleaner}, writes kept records to the output atomically, and writes the report to
 * `{output}.report.json`. Memory is bounded except for the dedup key sets.
 *
 * @module
 */
import { type AbstractOptions, createAbstractCleaner, readCorpusIds } from "./abstracts.ts";
import { CleanCounts, type DropReason } from "./filters.ts";
import { createGuidelineCleaner, type GuidelineOptions } from "./guidelines.ts";
import {
  AtomicWriter,
  JsonlError,
  JsonlReader,
  type JsonObject,
  parseJsonlLine,
  refuseOverwritingInputs,
  writeJsonAtomic,
} from "./jsonl.ts";
import { LanguageDetector } from "./langid.ts";
import { createPaperCleaner, type PaperOptions } from "./papers.ts";
import type { RecordCleaner } from "./pipeline.ts";
import { createReplaySampler, type ReplayOptions } from "./replay.ts";

/** The sources `data clean` knows. */
export type CleanSource = "guidelines" | "abstracts" | "papers" | "replay";

/** The sources, in pipeline order. */
export const CLEAN_SOURCES: readonly CleanSource[] = ["guidelines", "abstracts", "papers", "replay"];

/** Options of {@linkcode cleanFile}. */
export interface CleanFileOptions {
  /** Which cleaner. */
  source: CleanSource;
  /** Input JSONL. */
  input: string;
  /** Output JSONL (written atomically). */
  output: string;
  /** Report path (default `{output}.report.json`). */
  report?: string;
  /** Count malformed lines (`bad_line`) and records missing a required field (`missing_field`) instead of failing. */
  skipBad?: boolean;
  /** Full-text JSONL whose `corpusid`s exclude abstracts (abstracts only). */
  papers?: string;
  /** Options of the source's cleaner (`keepRate` is required for replay). */
  options?: GuidelineOptions & AbstractOptions & PaperOptions & Partial<ReplayOptions>;
  /** Called about every `progressSeconds` with bytes read and records so far. */
  onProgress?: (bytesRead: number, counts: CleanCounts) => void;
  /** Seconds between progress calls (default 5). */
  progressSeconds?: number;
}

/** What a cleaning run did; also written as JSON next to the output. */
export interface CleanReport {
  /** Always `clean`. */
  command: "clean";
  /** The source cleaner used. */
  source: CleanSource;
  /** Input path. */
  input: string;
  /** Output path. */
  output: string;
  /** Report path. */
  report: string;
  /** Non-blank input lines. */
  read: number;
  /** Records written. */
  kept: number;
  /** Dropped records by reason (`bad_line`, `missing_field`, `empty`, `too_short`, `not_english`, …). */
  dropped: Partial<Record<DropReason, number>>;
  /** Input lines that were not valid UTF-8, read with U+FFFD in place of the invalid bytes. */
  invalidUtf8Lines: number;
  /** Input bytes. */
  bytesIn: number;
  /** Output bytes. */
  bytesOut: number;
  /** Wall time. */
  seconds: number;
  /** Input MB (10⁶ bytes) per second. */
  mbPerSecond: number;
  /** The resolved options (JSON-safe). */
  options: Record<string, unknown>;
  /** True when `--help` was asked: nothing ran and nothing was written. */
  help?: true;
}

function needsLangid(source: CleanSource, language: string | null | undefined): boolean {
  return source === "replay" ? typeof language === "string" : language !== null;
}

/**
 * Builds the cleaner of a source (loading language ID and the papers' `corpusid` set when needed).
 *
 * @example
 * ```ts
 * import { createCleaner } from "./clean_file.ts";
 * const cleaner = await createCleaner("replay", { keepRate: 0.5 });
 * console.log(typeof cleaner.clean); // "function"
 * ```
 */
export async function createCleaner(
  source: CleanSource,
  options: CleanFileOptions["options"] = {},
  papers?: string,
  skipBad = false,
): Promise<RecordCleaner> {
  const langid = needsLangid(source, options.language) ? await LanguageDetector.load() : null;
  switch (source) {
    case "guidelines":
      return createGuidelineCleaner(options, langid);
    case "abstracts": {
      const excludeIds = papers ? await readCorpusIds(papers, { skipBad }) : options.excludeIds;
      return createAbstractCleaner({ ...options, excludeIds }, langid);
    }
    case "papers":
      return createPaperCleaner(options, langid);
    case "replay":
      if (options.keepRate === undefined) throw new Error("replay needs a keep rate (--keep-rate)");
      return createReplaySampler({ ...options, keepRate: options.keepRate }, langid);
    default:
      throw new Error(`unknown source '${source}' (expected ${CLEAN_SOURCES.join(", ")})`);
  }
}

function jsonSafe(options: CleanFileOptions["options"]): Record<string, unknown> {
  const { excludeIds: _ids, ...rest } = options ?? {};
  return JSON.parse(JSON.stringify(rest)); // drops undefined values, as the saved report does
}

/**
 * Cleans one JSONL file (see the module doc). On any error the output is not created (the temporary file
 * is removed) and no report is written.
 *
 * @example
 * ```ts
 * import { cleanFile } from "./clean_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/in.jsonl`, '{"text": "general text"}\n');
 * const report = await cleanFile({ source: "replay", input: `${dir}/in.jsonl`, output: `${dir}/out.jsonl`, options: { keepRate: 1 } });
 * console.log(report.kept); // 1
 * ```
 */
export async function cleanFile(options: CleanFileOptions): Promise<CleanReport> {
  const t0 = performance.now();
  const { source, input, output } = options;
  const reportPath = options.report ?? `${output}.report.json`;
  if (options.papers && source !== "abstracts") {
    throw new Error("--papers applies to --source abstracts only");
  }
  await refuseOverwritingInputs(
    [["--input", input], ...(options.papers ? [["--papers", options.papers] as const] : [])],
    [["--output", output], ["--report", reportPath]],
  );
  const cleaner = await createCleaner(source, options.options, options.papers, options.skipBad);
  const counts = new CleanCounts();
  const reader = new JsonlReader(input);
  const writer = await AtomicWriter.open(output);
  const every = (options.progressSeconds ?? 5) * 1000;
  let nextProgress = performance.now() + every;
  try {
    for await (const { text, line } of reader) {
      counts.read++;
      let result: JsonObject | DropReason;
      try {
        result = cleaner.clean(parseJsonlLine(text, input, line), input, line);
      } catch (e) {
        if (!(e instanceof JsonlError) || !options.skipBad) throw e;
        counts.drop(e.kind);
        continue;
      }
      if (typeof result === "string") counts.drop(result);
      else {
        counts.kept++;
        const pending = writer.write(JSON.stringify(result) + "\n");
        if (pending) await pending;
      }
      if (options.onProgress && (counts.read & 255) === 0 && performance.now() >= nextProgress) {
        options.onProgress(reader.bytesRead, counts);
        nextProgress = performance.now() + every;
      }
    }
    await writer.commit();
  } catch (e) {
    await writer.abort();
    throw e;
  }
  const seconds = (performance.now() - t0) / 1000;
  const report: CleanReport = {
    command: "clean",
    source,
    input,
    output,
    report: reportPath,
    read: counts.read,
    kept: counts.kept,
    dropped: counts.dropped,
    invalidUtf8Lines: reader.invalidUtf8Lines,
    bytesIn: reader.bytesRead,
    bytesOut: writer.bytesWritten,
    seconds,
    mbPerSecond: seconds > 0 ? reader.bytesRead / 1e6 / seconds : 0,
    options: {
      ...jsonSafe(options.options),
      skipBad: options.skipBad ?? false,
      papers: options.papers ?? null,
    },
  };
  await writeJsonAtomic(reportPath, report);
  return report;
}
