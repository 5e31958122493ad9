/**
 * Offline resharding of a native checkpoint from any (tp, pp, dp, ZeRO-1) layout to any other, streaming one
 * full tensor at a time (a parameter or one AdamW moment is reassembled from the source shards, cut for
 * each target rank, and dropped). Without ZeRO-1 the optimizer state is per parameter and identical across
 * DP, so DP only matters for ZeRO-1 chunking. The iteration, consumed samples, data state and AdamW step are
 * kept, so training resumes on the new layout; the run's `hf/` files are copied along. A new DP size keeps the
 * global batch (micro_batch × grad_accum × dp, as Megatron's --global-batch-size) by rescaling grad_accum.
 *
 * @module
 */
import { basename, join } from "node:path";
import { type CheckpointTopology as Topology, resolveCheckpoint } from "../checkpoint.ts";
import { type TrainConfig, validateConfig } from "../config.ts";
import { buildAtomically } from "./hf.ts";
import { growVocab } from "./resize.ts";
import { type MomentKind, NativeCheckpointReader, type Progress, writeNativeCheckpoint } from "./native.ts";

/** Target layout of {@linkcode reshard} (unset fields keep the source's). */
export interface ReshardOptions extends Partial<Topology> {
  /** Progress lines. */
  progress?: Progress;
  /** Verify source shard checksums (default true). */
  verify?: boolean;
  /** Grow the vocabulary by this many tokens (new rows: mean of the existing rows; see resize.ts). */
  addTokens?: number;
  /**
   * Lines about training settings the new layout changed: grad_accum rescaled for a new DP size, or a global
   * batch that could not be kept (default: written to stderr).
   */
  notice?: (line: string) => void;
}

/**
 * The training settings at DP size `dp` of a run trained at `fromDp`: grad_accum rescaled so the global batch
 * (micro_batch × grad_accum × dp) stays the same, or unchanged when the global batch is not a multiple of
 * micro_batch × dp; with a line saying which.
 */
function keepGlobalBatch(
  t: TrainConfig,
  fromDp: number,
  dp: number,
): { train: TrainConfig; notice?: string } {
  if (dp === fromDp) return { train: t };
  const global = t.micro_batch * t.grad_accum * fromDp, perStep = t.micro_batch * dp;
  const was = `the global batch of ${global} sequences (micro_batch ${t.micro_batch} × grad_accum ` +
    `${t.grad_accum} × dp ${fromDp})`;
  if (global % perStep === 0) {
    const gradAccum = global / perStep;
    return {
      train: { ...t, grad_accum: gradAccum },
      notice: `train.grad_accum ${t.grad_accum} -> ${gradAccum} keeps ${was} at dp ${dp}`,
    };
  }
  let hint = `${global} is not a multiple of ${dp}, so no setting at dp ${dp} keeps it`;
  if (global % dp === 0) {
    const mb = gcd(t.micro_batch, global / dp);
    hint = `keep it with 'pretrain --resume … --micro-batch ${mb} --grad-accum ${global / dp / mb}'`;
  }
  return {
    train: t,
    notice: `${was} is not a multiple of micro_batch × dp ${dp} (${perStep}): train.grad_accum stays ` +
      `${t.grad_accum}, so the global batch becomes ${perStep * t.grad_accum}; ${hint}`,
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Reshards the checkpoint at `input` (run dir, checkpoints dir or iter dir) into the new run directory
 * `outRun`; returns the new checkpoint directory.
 *
 * @example
 * ```ts ignore
 * await reshard("runs/7b-tp4", "runs/7b-tp1", { tp: 1, pp: 1 });
 * ```
 */
export async function reshard(input: string, outRun: string, opts: ReshardOptions = {}): Promise<string> {
  const dir = await resolveCheckpoint(input);
  using src = await NativeCheckpointReader.open(dir, { verify: opts.verify, reuseBuffers: true });
  const from = src.meta.topology;
  const to: Required<Topology> = {
    tp: opts.tp ?? from.tp,
    pp: opts.pp ?? from.pp,
    dp: opts.dp ?? from.dp,
    zero1: opts.zero1 ?? Boolean(from.zero1),
  };
  // One full tensor cached: every target TP rank cuts its piece from the same reassembly.
  let cache: { key: string; data: Float32Array } | undefined;
  const cached = async (key: string, load: () => Promise<Float32Array>) => {
    if (cache?.key !== key) {
      cache = undefined;
      cache = { key, data: await load() };
    }
    return cache.data;
  };
  const grown = growVocab(src.model, opts.addTokens ?? 0, {
    param: (name) => cached(`p:${name}`, () => src.param(name)),
    moment: (name, kind: MomentKind) => cached(`${kind}:${name}`, () => src.moment(name, kind)),
  });
  const batch = keepGlobalBatch(src.meta.config.train, from.dp, to.dp);
  const config = {
    ...src.meta.config,
    train: batch.train,
    model: grown.model,
    parallel: { tp: to.tp, pp: to.pp, dp: to.dp, distributed_optimizer: to.zero1 },
  };
  validateConfig(config, `reshard to tp=${to.tp} pp=${to.pp} dp=${to.dp}`);
  if (batch.notice) (opts.notice ?? ((line) => console.error(`note: ${line}`)))(batch.notice);
  const step = await src.step();
  const hfDir = join(dir, "..", "..", "hf");
  return await buildAtomically(outRun, async (tmp) => {
    const ck = await writeNativeCheckpoint(
      tmp,
      {
        config,
        topology: to,
        iteration: src.meta.iteration,
        consumedSamples: src.meta.consumed_samples,
        data: src.meta.data,
        step,
      },
      grown,
      opts.progress,
    );
    if (await Deno.stat(hfDir).then((s) => s.isDirectory, () => false)) {
      await Deno.mkdir(join(tmp, "hf"));
      for await (const e of Deno.readDir(hfDir)) {
        if (e.isFile) await Deno.copyFile(join(hfDir, e.name), join(tmp, "hf", e.name));
      }
    }
    return join(outRun, "checkpoints", basename(ck));
  });
}
