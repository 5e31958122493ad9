/**
 * The pretraining loop around the native `train_step`: batches, validation, metrics, checkpoints, resume.
 * Data-agnostic: the caller supplies batches as a pure function of the number of consumed samples, which is
 * what makes resume exact.
 *
 * @module
 */
import { join } from "node:path";
import type { NativeModel } from "../runtime/model.ts";
import { type CheckpointSync, loadCheckpoint, resolveCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import type { RunConfig } from "./config.ts";

/** `rows` sequences of `seq` tokens with targets and loss weights. */
export interface Batch {
  /** Inputs `[rows·seq]`. */
  tokens: Int32Array;
  /** Targets `[rows·seq]`. */
  targets: Int32Array;
  /** Loss weights `[rows·seq]`. */
  lossMask: Float32Array;
  /** Packed rows: the example of each token `[rows·seq]`, non-decreasing along a row (absent: one per row). */
  segmentIds?: Int32Array;
}

/** Where the training data comes from. */
export interface BatchSource {
  /** Training batch of `rows` sequences starting at sample `consumed`. */
  train(consumed: number, rows: number): Batch;
  /** Fixed validation batches (may be empty). */
  valid(rows: number, count: number): Batch[];
  /** State recorded in checkpoints (seed, source, …). */
  state: Record<string, unknown>;
}

/** One line of `metrics.jsonl`. */
export interface StepMetrics {
  /** Completed optimizer steps. */
  step: number;
  /** Training loss of this step. */
  loss: number;
  /** Learning rate used. */
  lr: number;
  /** Gradient norm before clipping. */
  grad_norm: number;
  /** Tokens processed so far (from the start of training, including before a resume). */
  tokens: number;
  /** Throughput of this step. */
  tokens_per_s: number;
  /** Seconds of this step. */
  step_time: number;
  /** Estimated seconds to the end. */
  eta_s: number;
  /** Validation loss when evaluated at this step. */
  val_loss?: number;
  /** The gradient norm was not finite: the update was skipped. */
  skipped?: boolean;
  /** The loss exceeded twice its running mean (logged, training goes on). */
  spike?: boolean;
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** The model (already initialised or to be restored by `resume`). */
  model: NativeModel;
  /** Resolved configuration. */
  config: RunConfig;
  /** Run directory: metrics.jsonl and checkpoints/. */
  runDir: string;
  /** Training and validation data. */
  data: BatchSource;
  /** Checkpoint to resume from (run dir, checkpoints dir or iter dir). */
  resume?: string;
  /** Verify shard checksums on resume (default true). */
  verify?: boolean;
  /** Called after every step (progress display); a returned promise is awaited before the next step. */
  onStep?: (m: StepMetrics, total: number) => unknown;
  /** Called with one-line notices (checkpoint written, resumed, …). */
  onNotice?: (message: string) => void;
  /** A fresh run (no `resume`) deletes the run directory's old checkpoints when its first step begins: not
   * when a stop request comes first, so an interrupted start leaves them in place. */
  overwrite?: boolean;
  /** Stops after the current step, writing a checkpoint (with `sync`: after the step every rank reaches
   * once any rank's signal is aborted). */
  signal?: AbortSignal;
  /** Agreement of a multi-rank job: checkpoints are written collectively, and stop requests are shared. */
  sync?: CheckpointSync;
}

/** Outcome of {@linkcode train}. */
export interface TrainResult {
  /** Every step's metrics of this invocation. */
  history: StepMetrics[];
  /** Iteration reached. */
  iteration: number;
  /** Samples consumed. */
  consumedSamples: number;
  /** Last checkpoint written (if any). */
  checkpoint?: string;
}

/** Mean validation loss over the given batches. */
export async function validationLoss(
  model: NativeModel,
  batches: Batch[],
  rows: number,
  seq: number,
): Promise<number> {
  let sum = 0, count = 0;
  for (const b of batches) {
    const r = await model.evalLoss(b.tokens, b.targets, b.lossMask, rows, seq, b.segmentIds);
    sum += r.lossSum;
    count += r.count;
  }
  return sum / count;
}

// On resume, drop metric lines of steps after the checkpoint (written by the interrupted run), and a line torn
// by a kill in the middle of its write.
async function truncateMetrics(path: string, iteration: number): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return;
  }
  const stepOf = (line: string): number => {
    try {
      return (JSON.parse(line) as StepMetrics).step;
    } catch {
      return Infinity; // torn line
    }
  };
  const kept = text.split("\n").filter((l) => l.trim() && stepOf(l) <= iteration);
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""));
  await Deno.rename(tmp, path);
}

/**
 * Runs `config.train.steps` optimizer steps (continuing from a checkpoint when `resume` is given).
 *
 * @example
 * ```ts ignore
 * const result = await train({ model, config, runDir: "runs/tiny", data });
 * console.log(result.history.at(-1)?.loss);
 * ```
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { model, config, runDir, data } = opts;
  const t = config.train;
  const rank = model.rank;
  // Data parallel: the global batch is micro_batch × grad_accum × dp samples; DP rank d trains on its slice.
  const rows = t.micro_batch * t.grad_accum, globalRows = rows * rank.dp;
  const leader = rank.worldRank === 0; // writes metrics.jsonl
  const notice = opts.onNotice ?? (() => {});
  await Deno.mkdir(runDir, { recursive: true });
  const metricsPath = join(runDir, "metrics.jsonl");
  let iteration = 0, consumed = 0;
  if (opts.resume) {
    const dir = await resolveCheckpoint(opts.resume);
    const meta = await loadCheckpoint(dir, model, { verify: opts.verify ?? true });
    iteration = meta.iteration;
    consumed = meta.consumed_samples;
    if (leader) await truncateMetrics(metricsPath, iteration);
    notice(`resumed from ${dir} (iteration ${iteration}, ${consumed} samples consumed)`);
  }
  // A fresh run replaces an old metrics.jsonl at its first step, not before: a run that fails to start
  // leaves the old one (or none) behind, not an empty file.
  let replaceMetrics = !opts.resume;
  const record = async (m: StepMetrics) => {
    if (!leader) return;
    await Deno.writeTextFile(metricsPath, JSON.stringify(m) + "\n", { append: !replaceMetrics });
    replaceMetrics = false;
  };
  const valid = t.eval_every > 0 ? data.valid(t.micro_batch, t.eval_batches) : [];
  const history: TrainResult["history"] = [];
  let checkpoint: string | undefined, elapsed = 0, skippedInARow = 0;
  let lossEma = NaN, finiteSteps = 0; // running mean of the loss, for spike logging
  // A checkpoint that cannot be written (disk full, read-only) leaves the previous one intact (temp dir +
  // rename); train.on_save_error decides whether training goes on without it.
  const save = async () => {
    try {
      checkpoint = await saveCheckpoint(runDir, model, config, {
        iteration,
        consumedSamples: consumed,
        data: data.state,
      }, opts.sync);
      notice(`checkpoint ${checkpoint}`);
    } catch (e) {
      const why = `checkpoint of iteration ${iteration} in ${join(runDir, "checkpoints")} failed ` +
        `(${(e as Error).message}); the previous checkpoint is intact`;
      if (t.on_save_error !== "continue") throw new Error(why);
      notice(`${why}; training continues (train.on_save_error: continue)`);
    }
  };
  // A stop request of any rank stops every rank after the same step: an all-reduce of the requests (one int
  // per step), because signals reach the ranks of a job at different times.
  const stopRequested = async () => {
    const wanted = opts.signal?.aborted ?? false;
    return opts.sync ? !(await opts.sync.allOk(!wanted)) : wanted;
  };
  if (iteration < t.steps) {
    if (await stopRequested()) {
      notice(`stopped before the first step on request (iteration ${iteration}); nothing new to save`);
      return { history, iteration, consumedSamples: consumed, checkpoint };
    }
    if (opts.overwrite && !opts.resume && leader) {
      await Deno.remove(join(runDir, "checkpoints"), { recursive: true }).catch(() => {});
    }
  }
  while (iteration < t.steps) {
    const batch = data.train(consumed + rank.dpRank * rows, rows);
    const t0 = performance.now();
    const r = await model.trainStep({ ...batch, nMicro: t.grad_accum, batch: t.micro_batch, seq: t.seq });
    const dt = (performance.now() - t0) / 1000;
    iteration += 1;
    consumed += globalRows;
    elapsed += dt;
    const done = history.length + 1;
    const m: StepMetrics = {
      step: iteration,
      loss: r.loss,
      lr: r.lr,
      grad_norm: r.gradNorm,
      tokens: consumed * t.seq,
      tokens_per_s: globalRows * t.seq / dt,
      step_time: dt,
      eta_s: (elapsed / done) * (t.steps - iteration),
    };
    if (r.skipped) {
      m.skipped = true;
      skippedInARow++;
      const first = consumed - globalRows;
      notice(
        `step ${iteration}: non-finite loss or gradient norm (${r.loss}, ${r.gradNorm}); update skipped`,
      );
      if (skippedInARow >= t.skip_limit) {
        history.push(m);
        await record(m);
        await save();
        throw new Error(
          `${skippedInARow} steps in a row had a non-finite loss or gradient norm; stopped at iteration ` +
            `${iteration} with a checkpoint. Last batch: samples ${first}..${consumed - 1}`,
        );
      }
    } else {
      skippedInARow = 0;
      // Loss spikes: more than twice the running mean (EMA 0.9) after a 10-step warm-up of the mean.
      if (finiteSteps >= 10 && r.loss > 2 * lossEma) {
        m.spike = true;
        notice(`step ${iteration}: loss spike ${r.loss.toFixed(4)} vs running mean ${lossEma.toFixed(4)}`);
      }
      lossEma = finiteSteps === 0 ? r.loss : 0.9 * lossEma + 0.1 * r.loss;
      finiteSteps++;
    }
    if (valid.length && (iteration % t.eval_every === 0 || iteration === t.steps)) {
      m.val_loss = await validationLoss(model, valid, t.micro_batch, t.seq);
    }
    history.push(m);
    await record(m);
    await opts.onStep?.(m, t.steps);
    const stop = await stopRequested();
    if ((t.save_every > 0 && iteration % t.save_every === 0) || iteration === t.steps || stop) await save();
    if (stop) {
      notice(`stopped at iteration ${iteration} on request`);
      break;
    }
  }
  return { history, iteration, consumedSamples: consumed, checkpoint };
}
