/**
 * `deno task plot RUN…`: loss curves of one or more runs in one SVG chart (train and validation loss vs
 * tokens, learning rate on a second axis).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import { lossChartSvg, readRunMetrics, type RunCurve, writeLossPlot } from "../models/plot.ts";
import { runMain, UsageError } from "./common.ts";

const HELP = `Usage: deno task plot RUN... [options]

Plots training and validation loss against tokens (learning rate dotted, on a second axis) of each run
directory (or metrics.jsonl file) into one SVG chart, one colour per run.

Options:
  --out FILE     the SVG file to write (default: RUN/loss.svg for one run, loss.svg for several)
  --title TEXT   chart title
  --debug        show stack traces on errors
  -h, --help     this help

Examples:
  deno task plot runs/tiny
  deno task plot runs/tiny runs/tiny-long --out compare.svg
`;

/**
 * Entry point: plots the runs named in `args` and returns the path written.
 *
 * @example
 * ```ts
 * import { main } from "./plot.ts";
 * await main(["runs/tiny", "runs/tiny-long", "--out", "compare.svg"]);
 * ```
 */
export async function main(args: string[]): Promise<string | undefined> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      title: { type: "string" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  if (!positionals.length) throw new UsageError("name at least one run directory");
  const runs: RunCurve[] = [];
  for (const path of positionals) {
    const dir = path.endsWith(".jsonl") ? join(path, "..") : path;
    runs.push({ name: basename(dir.replace(/\/+$/, "")) || dir, metrics: await readRunMetrics(path) });
  }
  const single = positionals.length === 1 && !positionals[0].endsWith(".jsonl");
  const out = values.out ?? (single ? join(positionals[0], "loss.svg") : "loss.svg");
  await Deno.writeTextFile(out, await lossChartSvg(runs, { title: values.title }));
  const steps = runs.map((r) => `${r.name} (${r.metrics.length} steps)`).join(", ");
  console.log(`wrote ${out}: ${steps}`);
  return out;
}

/**
 * Writes `RUN/loss.svg` at the end of a training run and reports it through `log`. A chart that cannot be
 * drawn (no metrics yet) is reported as a note, never an error: the run itself succeeded.
 *
 * @example
 * ```ts
 * import { plotRun } from "./plot.ts";
 * await plotRun("runs/tiny", console.log); // "plot: runs/tiny/loss.svg"
 * ```
 */
export async function plotRun(runDir: string, log: (line: string) => void): Promise<string | undefined> {
  try {
    const path = await writeLossPlot(runDir);
    log(`plot: ${path}`);
    return path;
  } catch (e) {
    log(`note: no loss plot for ${runDir}: ${(e as Error).message}`);
    return undefined;
  }
}

if (import.meta.main) await runMain(async (a) => void await main(a), HELP);
