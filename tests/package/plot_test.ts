// Loss plots: metrics parsing, SVG that rasterises with rsvg-convert and shows the curves, `deno task plot`
// overlaying runs, and the loss.svg every pretraining run writes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { lossChartSvg, parseMetricsJsonl, writeLossPlot } from "../../models/plot.ts";
import type { StepMetrics } from "../../models/trainer.ts";
import { tempDir } from "../helpers.ts";
import { decodePng, type Image } from "./png.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function fakeMetrics(steps: number, start: number, tokensPerStep = 2048): StepMetrics[] {
  return Array.from({ length: steps }, (_, i) => ({
    step: i + 1,
    loss: start * Math.exp(-i / steps) + 0.1 * Math.sin(i),
    lr: 3e-3 * Math.min(1, (i + 1) / 10),
    grad_norm: 1,
    tokens: (i + 1) * tokensPerStep,
    tokens_per_s: 1000,
    step_time: 1,
    eta_s: steps - i,
    ...(i % 10 === 9 ? { val_loss: start * Math.exp(-i / steps) + 0.2 } : {}),
  }));
}

async function rasterise(svgPath: string): Promise<Image> {
  const png = svgPath.replace(/\.svg$/, ".png");
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("rsvg-convert", { args: ["-o", png, svgPath], stderr: "piped" }).output();
  } catch (e) {
    throw new Error(`rsvg-convert is needed (Debian package librsvg2-bin): ${(e as Error).message}`);
  }
  assert.equal(out.code, 0, `rsvg-convert failed: ${new TextDecoder().decode(out.stderr)}`);
  return decodePng(await Deno.readFile(png));
}

/** Pixels within `tol` of an RGB colour. */
function countColour(img: Image, rgb: [number, number, number], tol = 40): number {
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const p = i * 4;
    if (
      Math.abs(img.rgba[p] - rgb[0]) <= tol && Math.abs(img.rgba[p + 1] - rgb[1]) <= tol &&
      Math.abs(img.rgba[p + 2] - rgb[2]) <= tol
    ) n++;
  }
  return n;
}

// Vega's default categorical colours: the first two runs.
const BLUE: [number, number, number] = [0x4c, 0x78, 0xa8];
const ORANGE: [number, number, number] = [0xf5, 0x85, 0x18];

Deno.test("parseMetricsJsonl: last line of a repeated step wins, sorted, errors name the line", () => {
  const line = (step: number, loss: number) =>
    JSON.stringify({
      step,
      loss,
      lr: 1e-3,
      grad_norm: 1,
      tokens: step * 10,
      tokens_per_s: 1,
      step_time: 1,
      eta_s: 0,
    });
  const m = parseMetricsJsonl([line(2, 5), line(1, 6), "", line(2, 4)].join("\n"));
  assert.deepEqual(m.map((r) => [r.step, r.loss]), [[1, 6], [2, 4]]);
  assert.throws(() => parseMetricsJsonl(`${line(1, 1)}\n{oops`, "m.jsonl"), /m\.jsonl:2: not JSON/);
  assert.throws(() => parseMetricsJsonl(`{"step":1,"loss":"x","lr":1,"tokens":1}`), /'loss' is not a number/);
});

Deno.test("a run's loss.svg rasterises, is non-empty and draws the curve", async () => {
  using dir = tempDir();
  const run = join(dir.path, "tiny");
  await Deno.mkdir(run);
  await Deno.writeTextFile(
    join(run, "metrics.jsonl"),
    fakeMetrics(60, 10).map((m) => JSON.stringify(m)).join("\n") + "\n",
  );
  const path = await writeLossPlot(run);
  assert.equal(path, join(run, "loss.svg"));
  const svg = await Deno.readTextFile(path);
  for (const text of ["loss", "tokens", "learning rate", "validation", "tiny"]) {
    assert.ok(svg.includes(text), `the chart mentions '${text}'`);
  }
  const img = await rasterise(path);
  assert.ok(img.width > 400 && img.height > 200, `${img.width}x${img.height}`);
  assert.ok(countColour(img, BLUE) > 300, "the run's lines are drawn in the first category colour");
  assert.equal(countColour(img, ORANGE, 20), 0, "one run: no second colour");
});

Deno.test("a single validation loss is drawn (as a dot: a one-point line draws nothing)", async () => {
  const metrics = fakeMetrics(9, 10); // no validation loss yet
  metrics.push({ ...fakeMetrics(10, 10)[9], val_loss: 6.15 });
  const svg = await lossChartSvg([{ name: "one", metrics }]);
  const dots = svg.match(/aria-roledescription="point"[^>]*/g) ?? [];
  assert.equal(dots.length, 1, "one validation dot");
  assert.match(svg, /aria-label="tokens: [^"]*; loss: 6\.15; run: one"/);
});

Deno.test("an empty run is an error, not an empty chart", async () => {
  await assert.rejects(() => lossChartSvg([{ name: "x", metrics: [] }]), /no metrics to plot/);
});

Deno.test("deno task plot overlays several runs in one chart; a missing run is a one-line error", async () => {
  using dir = tempDir();
  for (const [name, start] of [["a", 10], ["b", 8]] as const) {
    await Deno.mkdir(join(dir.path, name));
    await Deno.writeTextFile(
      join(dir.path, name, "metrics.jsonl"),
      fakeMetrics(40, start).map((m) => JSON.stringify(m)).join("\n"),
    );
  }
  const out = join(dir.path, "both.svg");
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli/plot.ts"), join(dir.path, "a"), join(dir.path, "b"), "--out", out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.match(new TextDecoder().decode(r.stdout), /wrote .*both\.svg: a \(40 steps\), b \(40 steps\)/);
  const img = await rasterise(out);
  assert.ok(countColour(img, BLUE) > 200, "first run drawn");
  assert.ok(countColour(img, ORANGE) > 200, "second run drawn");
  const missing = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cli/plot.ts"), join(dir.path, "nope")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(missing.code, 1);
  assert.match(
    new TextDecoder().decode(missing.stderr),
    /^error: .*nope\/metrics\.jsonl: cannot read run metrics/,
  );
});

Deno.test("every pretraining run ends by writing runs/<name>/loss.svg", async () => {
  using dir = tempDir();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "cli/pretrain.ts"),
      ...["--steps", "4", "--seq", "32", "--micro-batch", "2", "--grad-accum", "1", "--eval-every", "2"],
      ...["--set", "train.warmup_steps=1", "--set", "model.n_layers=1", "--set", "model.ffn_dim=128"],
      ...["--name", "p", "--out", dir.path],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, stderr);
  assert.match(stderr, /plot: .*p\/loss\.svg/);
  const img = await rasterise(join(dir.path, "p", "loss.svg"));
  assert.ok(countColour(img, BLUE) > 50, "the curve is drawn");
});
