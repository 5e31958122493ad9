/**
 * Evaluation outputs: `{bench}.json` (metrics, no generations), `{bench}.generations.jsonl`, and a markdown
 * table of one or more results.
 *
 * @module
 */

import { join } from "node:path";
import type { EvalResult } from "./run.ts";

/**
 * The `{bench}.json` content: everything in the result except the generations.
 *
 * @example
 * ```ts
 * import { resultSummary } from "./report.ts";
 * import type { EvalResult } from "./run.ts";
 * declare const r: EvalResult;
 * console.log(JSON.stringify(resultSummary(r), null, 2));
 * ```
 */
export function resultSummary(result: EvalResult): Omit<EvalResult, "records"> {
  const { records: _, ...summary } = result;
  return summary;
}

const pct = (x: number): string => (100 * x).toFixed(1);

/**
 * A markdown table, one row per result: accuracy (mean ± std over seeds), 95% bootstrap CI (first seed),
 * accuracy over parseable answers, unparseable count, macro-F1 where computed.
 *
 * @example
 * ```ts
 * import { markdownTable } from "./report.ts";
 * import type { EvalResult } from "./run.ts";
 * declare const results: EvalResult[];
 * console.log(markdownTable(results));
 * ```
 */
export function markdownTable(results: readonly EvalResult[]): string {
  const rows = [
    "| benchmark | mode | shots | n | accuracy % | 95% CI | acc. parseable % | unparseable | macro-F1 |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const m = r.perSeed[0].metrics;
    const acc = r.perSeed.length > 1
      ? `${pct(r.accuracy.mean)} ± ${pct(r.accuracy.std)}`
      : pct(r.accuracy.mean);
    const unparseable = r.perSeed.map((s) => s.metrics.unparseable).join("/");
    const f1 = m.macroF1 === undefined ? "" : pct(m.macroF1);
    rows.push(
      `| ${r.benchmark}${r.chat ? " (chat)" : ""}${
        r.format === "meditron" ? "" : ` (${r.format})`
      } | ${r.mode} | ${r.shots} | ${r.questions} | ${acc} | ${pct(m.ci95[0])}–${pct(m.ci95[1])} | ${
        pct(m.accuracyParseable)
      } | ${unparseable} | ${f1} |`,
    );
  }
  return rows.join("\n") + "\n";
}

/**
 * Per-subject and per-meta_info accuracy of a result (first seed) as markdown tables; empty when the
 * questions have neither.
 *
 * @example
 * ```ts
 * import { breakdownTables } from "./report.ts";
 * import type { EvalResult } from "./run.ts";
 * declare const r: EvalResult;
 * console.log(breakdownTables(r));
 * ```
 */
export function breakdownTables(result: EvalResult): string {
  const m = result.perSeed[0].metrics;
  const parts: string[] = [];
  for (const [title, groups] of [["subject", m.bySubject], ["meta_info", m.byMeta]] as const) {
    const keys = Object.keys(groups).sort();
    if (keys.length === 0) continue;
    parts.push(`\n| ${title} | n | accuracy % |\n|---|---:|---:|`);
    for (const k of keys) parts.push(`| ${k} | ${groups[k].n} | ${pct(groups[k].accuracy)} |`);
  }
  return parts.length === 0 ? "" : parts.join("\n") + "\n";
}

/**
 * Writes `{dir}/{bench}.json`, `{dir}/{bench}.generations.jsonl` and `{dir}/{bench}.md` (the table row and
 * the per-subject / per-meta breakdown); returns the paths.
 *
 * @example
 * ```ts
 * import { writeResult } from "./report.ts";
 * import type { EvalResult } from "./run.ts";
 * declare const r: EvalResult;
 * const paths = await writeResult("runs/tiny/eval", r);
 * ```
 */
export async function writeResult(dir: string, result: EvalResult): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const json = join(dir, `${result.benchmark}.json`);
  const gens = join(dir, `${result.benchmark}.generations.jsonl`);
  const md = join(dir, `${result.benchmark}.md`);
  await Deno.writeTextFile(json, JSON.stringify(resultSummary(result), null, 2) + "\n");
  await Deno.writeTextFile(gens, result.records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  await Deno.writeTextFile(md, markdownTable([result]) + breakdownTables(result));
  return [json, gens, md];
}
