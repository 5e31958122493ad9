/**
 * `deno task bench preemption [--trials 20]`: SIGKILL a pretraining run at random moments (seeded), resume it
 * with `--resume` each time until it reaches its last step, and compare the loss curve with an uninterrupted
 * run: it must be bit-identical. Prints trials survived; the test suite runs 3 trials of the same harness.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchMain, defineBench } from "./common.ts";

const CLI = fileURLToPath(new URL("../cli/pretrain.ts", import.meta.url));

/** One line of a run's loss curve (timings excluded). */
export interface CurvePoint {
  /** Step. */
  step: number;
  /** Training loss. */
  loss: number;
  /** Learning rate. */
  lr: number;
  /** Gradient norm. */
  grad_norm: number;
}

/** Outcome of {@linkcode killAndResume}. */
export interface PreemptionResult {
  /** Runs that were really killed (ended by SIGKILL, not finished). */
  kills: number;
  /** Whether the interrupted run's curve equals the uninterrupted one bit for bit. */
  identical: boolean;
  /** Steps of the run. */
  steps: number;
}

function curve(runDir: string): CurvePoint[] {
  return Deno.readTextFileSync(join(runDir, "metrics.jsonl")).trim().split("\n").map((l) => {
    const { step, loss, lr, grad_norm } = JSON.parse(l);
    return { step, loss, lr, grad_norm };
  });
}

function baseArgs(dir: string, name: string, steps: number): string[] {
  const corpus = join(dir, "corpus.jsonl");
  try {
    Deno.statSync(corpus);
  } catch {
    const docs = Array.from(
      { length: 80 },
      (_, i) =>
        JSON.stringify({
          text:
            `Record ${i}: atrial fibrillation is rate-controlled with a beta-blocker; anticoagulate by CHA2DS2-VASc.`,
        }),
    );
    Deno.writeTextFileSync(corpus, docs.join("\n") + "\n");
  }
  return [
    "run",
    "-A",
    CLI,
    "--data",
    corpus,
    "--out",
    dir,
    "--name",
    name,
    "--steps",
    String(steps),
    "--seq",
    "32",
    "--micro-batch",
    "2",
    "--eval-every",
    "0",
    "--save-every",
    "1",
    "--set",
    "train.warmup_steps=1",
    "--set",
    "model.n_layers=1",
    "--set",
    "model.dim=32",
    "--set",
    "model.ffn_dim=64",
    "--threads",
    "1",
  ];
}

async function runToEnd(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).slice(-2000));
}

/** The killed run's metrics.jsonl: its steps, and the last one's duration (s). */
function stepsWritten(dir: string): Promise<{ steps: number; stepTime: number }> {
  return Deno.readTextFile(join(dir, "killed", "metrics.jsonl")).then(
    (t) => {
      const lines = t.split("\n").filter(Boolean);
      return { steps: lines.length, stepTime: lines.length ? JSON.parse(lines.at(-1)!).step_time : 0 };
    },
    () => ({ steps: 0, stepTime: 0 }),
  );
}

/** The iteration of the killed run's latest checkpoint (0: none). */
function latestIteration(dir: string): Promise<number> {
  return Deno.readTextFile(join(dir, "killed", "checkpoints", "latest")).then(
    (t) => Number(t.trim().replace("iter_", "")),
    () => 0,
  );
}

/** Runs `trials` kill/resume cycles in `dir` against an uninterrupted reference run. */
export async function killAndResume(
  dir: string,
  trials: number,
  seed: number,
  steps = 12,
): Promise<PreemptionResult> {
  await runToEnd(baseArgs(dir, "reference", steps));
  const reference = curve(join(dir, "reference"));
  let rand = seed >>> 0;
  const next = () => (rand = (Math.imul(rand, 1664525) + 1013904223) >>> 0) / 4294967296;
  let kills = 0;
  for (let t = 0; t < trials; t++) {
    const started = (await latestIteration(dir)) > 0;
    const before = (await stepsWritten(dir)).steps;
    const child = new Deno.Command(Deno.execPath(), {
      args: [...baseArgs(dir, "killed", steps), ...(started ? ["--resume"] : [])],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Kill at a random moment once this invocation has trained (checkpoints are written every step): after
    // 1–3 new steps, then up to one step's time on, in steps whatever the machine's speed.
    let exited = false;
    child.status.then(() => exited = true);
    const wanted = before + 1 + Math.floor(next() * 3);
    const deadline = Date.now() + 120_000;
    let seen = await stepsWritten(dir);
    while (!exited && seen.steps < wanted && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await stepsWritten(dir);
    }
    await new Promise((r) => setTimeout(r, next() * seen.stepTime * 1000));
    try {
      child.kill("SIGKILL");
    } catch { /* already finished */ }
    // A kill counts when it landed mid-run (not after the last checkpoint, while the plot was drawn).
    if ((await child.status).signal === "SIGKILL" && (await latestIteration(dir)) < steps) kills++;
  }
  const started = (await latestIteration(dir)) > 0;
  await runToEnd([...baseArgs(dir, "killed", steps), ...(started ? ["--resume"] : [])]);
  const resumed = curve(join(dir, "killed"));
  return { kills, identical: JSON.stringify(resumed) === JSON.stringify(reference), steps };
}

/** Runs the benchmark. */
async function run({ trials, seed }: { trials: number; seed: number }): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "meditron-preempt-" });
  try {
    const r = await killAndResume(dir, trials, seed, 80);
    console.log(
      `preemption: ${r.kills} SIGKILLs over a ${r.steps}-step run (checkpoint every step); final loss curve ` +
        `${r.identical ? "bit-identical to" : "DIFFERENT from"} the uninterrupted run`,
    );
    if (!r.identical) Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `deno task bench preemption`. */
export const bench = defineBench({
  name: "preemption",
  measures:
    `SIGKILLs a tiny 80-step pretraining run (checkpoint every step) at a seeded random moment 1-3 steps
after each start, --trials times, resuming it with --resume each time, then lets it finish; prints the kills
that landed and whether the final loss curve is bit-identical (exit 1 if not). The test suite runs 3 trials of
the same harness.`,
  peer: "the same run uninterrupted",
  options: {
    trials: { type: "int", default: 20, min: 1, help: "kill/resume cycles" },
    seed: { type: "int", default: 7, min: 0, help: "seed of the kill moments" },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
