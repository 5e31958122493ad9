/**
 * Loss curves of training runs as SVG: training and validation loss against tokens seen, the learning rate on
 * a second axis, one colour per run. Charts are Vega-Lite specifications rendered headless by Vega to SVG (no
 * DOM, no canvas), so they work in scripts, in the CLI and inline in Jupyter notebooks.
 *
 * @example
 * ```ts
 * import { writeLossPlot } from "@meditron/toolkit/models";
 * const svgPath = await writeLossPlot("runs/tiny"); // runs/tiny/loss.svg
 * ```
 *
 * @module
 */
import { join } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { StepMetrics } from "./trainer.ts";

/** The metrics of one run, as plotted. */
export interface RunCurve {
  /** Label of the run in the legend (usually the run directory's name). */
  name: string;
  /** One entry per optimizer step, as in `metrics.jsonl`. */
  metrics: StepMetrics[];
}

/** Options of {@linkcode lossChartSvg}. */
export interface LossChartOptions {
  /** Chart title (default: "Loss" plus the run name when there is one run). */
  title?: string;
  /** Width of the plotting area in pixels (default 640). */
  width?: number;
  /** Height of the plotting area in pixels (default 320). */
  height?: number;
}

/**
 * Parses the text of a `metrics.jsonl` file. When a resumed run repeats steps, the last line of a step wins;
 * the result is sorted by step. Blank lines are skipped; a malformed line is an error naming its line number.
 *
 * @example
 * ```ts
 * import { parseMetricsJsonl } from "@meditron/toolkit/models";
 * const m = parseMetricsJsonl('{"step":1,"loss":10.4,"lr":0.0001,"grad_norm":1,"tokens":2048,' +
 *   '"tokens_per_s":2000,"step_time":1,"eta_s":10}\n');
 * console.log(m[0].loss); // 10.4
 * ```
 */
export function parseMetricsJsonl(text: string, source = "metrics.jsonl"): StepMetrics[] {
  const byStep = new Map<number, StepMetrics>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let row: StepMetrics;
    try {
      row = JSON.parse(line) as StepMetrics;
    } catch (e) {
      throw new Error(`${source}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    for (const key of ["step", "loss", "lr", "tokens"] as const) {
      if (typeof row[key] !== "number") throw new Error(`${source}:${i + 1}: '${key}' is not a number`);
    }
    byStep.set(row.step, row);
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * Reads `metrics.jsonl` of a run directory (or a metrics file given directly).
 *
 * @example
 * ```ts
 * import { readRunMetrics } from "@meditron/toolkit/models";
 * const metrics = await readRunMetrics("runs/tiny");
 * console.log(metrics.at(-1)?.loss);
 * ```
 */
export async function readRunMetrics(runDirOrFile: string): Promise<StepMetrics[]> {
  const isFile = runDirOrFile.endsWith(".jsonl");
  const path = isFile ? runDirOrFile : join(runDirOrFile, "metrics.jsonl");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read run metrics (${(e as Error).message})`);
  }
  return parseMetricsJsonl(text, path);
}

/** One plotted point: the long format the chart specification consumes. */
interface Point {
  run: string;
  series: string;
  tokens: number;
  value: number;
}

// The Vega-Lite specification of a loss chart: loss (train solid, validation dashed) on the left axis, learning
// rate (dotted) on the right axis, tokens on the x axis, colour per run.
function lossChartSpec(runs: RunCurve[], options: LossChartOptions = {}): TopLevelSpec {
  const loss: Point[] = [], lr: Point[] = [];
  for (const { name, metrics } of runs) {
    for (const m of metrics) {
      if (Number.isFinite(m.loss)) loss.push({ run: name, series: "train", tokens: m.tokens, value: m.loss });
      if (m.val_loss !== undefined && Number.isFinite(m.val_loss)) {
        loss.push({ run: name, series: "validation", tokens: m.tokens, value: m.val_loss });
      }
      if (Number.isFinite(m.lr)) lr.push({ run: name, series: "lr", tokens: m.tokens, value: m.lr });
    }
  }
  const title = options.title ?? (runs.length === 1 ? `Loss: ${runs[0].name}` : "Loss");
  const x = { field: "tokens", type: "quantitative" as const, title: "tokens", axis: { format: "~s" } };
  const color = { field: "run", type: "nominal" as const, title: "run" };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: options.width ?? 640,
    height: options.height ?? 320,
    background: "white",
    layer: [
      {
        data: { values: loss },
        encoding: {
          x,
          y: { field: "value", type: "quantitative", title: "loss", scale: { zero: false } },
          color,
        },
        layer: [
          {
            mark: { type: "line", point: false, strokeWidth: 1.5 },
            encoding: {
              strokeDash: {
                field: "series",
                type: "nominal",
                title: "series",
                scale: { domain: ["train", "validation"], range: [[1, 0], [6, 3]] },
              },
              detail: { field: "series", type: "nominal" },
            },
          },
          // Validation losses are few (one per --eval-every): each is also a dot, so that a run with a
          // single evaluation still shows it (a one-point line draws nothing).
          {
            transform: [{ filter: "datum.series === 'validation'" }],
            mark: { type: "point", filled: true, size: 24 },
          },
        ],
      },
      {
        data: { values: lr },
        mark: { type: "line", strokeWidth: 1, strokeDash: [2, 2], opacity: 0.7 },
        encoding: {
          x,
          y: {
            field: "value",
            type: "quantitative",
            title: "learning rate (dotted)",
            axis: { orient: "right", format: ".1e" },
          },
          color,
        },
      },
    ],
    resolve: { scale: { y: "independent" } },
  };
}

/**
 * Renders the loss chart of one or more runs to an SVG document.
 *
 * @example
 * ```ts
 * import { lossChartSvg, readRunMetrics } from "@meditron/toolkit/models";
 * const svg = await lossChartSvg([
 *   { name: "tiny", metrics: await readRunMetrics("runs/tiny") },
 *   { name: "tiny-long", metrics: await readRunMetrics("runs/tiny-long") },
 * ]);
 * ```
 */
export async function lossChartSvg(runs: RunCurve[], options: LossChartOptions = {}): Promise<string> {
  if (!runs.some((r) => r.metrics.length)) throw new Error("no metrics to plot: every run is empty");
  const vgSpec = compile(lossChartSpec(runs, options)).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return svg.startsWith("<?xml") ? svg : `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}

/**
 * Writes the loss chart of a run directory, from its `metrics.jsonl`, to `loss.svg` in that directory (or
 * `out`) and returns the path written.
 *
 * @example
 * ```ts
 * import { writeLossPlot } from "@meditron/toolkit/models";
 * console.log(await writeLossPlot("runs/tiny")); // runs/tiny/loss.svg
 * ```
 */
export async function writeLossPlot(runDir: string, out: string = join(runDir, "loss.svg")): Promise<string> {
  const name = runDir.replace(/\/+$/, "").split("/").at(-1) || runDir;
  const svg = await lossChartSvg([{ name, metrics: await readRunMetrics(runDir) }]);
  const tmp = `${out}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, svg);
  await Deno.rename(tmp, out);
  return out;
}
