// One rank of a layout-equality run (started by runLayout below, under mpirun for > 1 rank): trains a tiny GQA
// model for a few steps on fixed global batches and writes its per-step losses and its parameter shards (with
// their place in the full tensors) to OUT/rank-XX.json. Optional trailing arguments: `packed` gives every row
// segment ids (several examples per row); `cuda` runs on the GPU (bf16; head_dim 64 for the tensor-core
// attention), as bench/gpu/layouts.ts does. The driver half (runLayout, assemble) serves
// tests/parallel/layouts_test.ts and bench/gpu/layouts.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { distFinalize, distInit, NativeModel, setNumThreads } from "../../runtime/mod.ts";
import { runRanks } from "../../parallel/launcher.ts";
import { tempDir } from "../helpers.ts";

export const DIMS = {
  dim: 32,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 64,
  vocabSize: 300,
  maxSeq: 16,
  normEps: 1e-5,
  ropeTheta: 10000,
};
/** The model of a `cuda` run: head_dim 64, so the tensor-core attention kernels run. */
export const CUDA_DIMS = { ...DIMS, dim: 256, ffnDim: 512, vocabSize: 1000, maxSeq: 64 };
export const SEQ = 16, MICRO = 2;
// A clip small enough that every step clips.
export const OPTIM = {
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 1,
  decaySteps: 10,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 0.05,
};

/** Global batch of step `s`: `nMicro` micro-batches of MICRO × SEQ tokens (deterministic). */
export function globalBatch(step: number, nMicro: number, vocab = DIMS.vocabSize) {
  const n = nMicro * MICRO * SEQ;
  const tokens = Int32Array.from(
    { length: n },
    (_, i) => (i * 37 + step * 101 + ((i * i) % 7)) % vocab,
  );
  const targets = Int32Array.from({ length: n }, (_, i) => (tokens[i] * 13 + 5 + step) % vocab);
  const lossMask = Float32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? 0 : 1)); // a partial mask
  return { tokens, targets, lossMask };
}

/** Segment ids of `n` tokens in rows of SEQ: row r is cut into segments at positions depending on r and step. */
export function packedSegments(step: number, n: number): Int32Array {
  const cuts = [[5, 12], [1], [], [8, 9, 15], [3, 10]];
  return Int32Array.from({ length: n }, (_, i) => {
    const row = Math.floor(i / SEQ), t = i % SEQ;
    return cuts[(row + step) % cuts.length].filter((c) => c <= t).length;
  });
}

const WORKER = fileURLToPath(import.meta.url);

/** One tensor shard of a rank's output. */
export interface Shard {
  name: string;
  shape: number[];
  fullShape: number[];
  splitDim: number;
  sliceStart: number;
  data: number[];
}
/** What one rank wrote. */
export interface RankOut {
  rank: { tpRank: number; ppRank: number; dpRank: number; comm: string };
  losses: number[];
  norms: number[];
  params: Shard[];
}

/** Runs the worker on tp·pp·dp ranks (plainly for one rank) and returns every rank's output. */
export async function runLayout(
  tp: number,
  pp: number,
  dp: number,
  zero1: boolean,
  steps: number,
  nMicro: number,
  flags: ("packed" | "cuda")[] = [],
): Promise<RankOut[]> {
  using dir = tempDir();
  const program = [
    Deno.execPath(),
    "run",
    "-A",
    "--no-config", // the rank program imports no package: it runs where npm is out of reach (GPU machines)
    WORKER,
    ...[tp, pp, dp, zero1 ? 1 : 0, steps, nMicro].map(String),
    dir.path,
    ...flags,
  ];
  const out = await runRanks(program, tp * pp * dp);
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `layout tp${tp} pp${pp} dp${dp} failed:\n${text.slice(-3000)}`);
  return [...Deno.readDirSync(dir.path)].map((e) =>
    JSON.parse(Deno.readTextFileSync(join(dir.path, e.name))) as RankOut
  );
}

/** Reassembles full tensors from the shards of all ranks (checking that replicas agree exactly). */
export function assemble(outs: RankOut[]): Map<string, Float64Array> {
  const full = new Map<string, Float64Array>();
  for (const o of outs) {
    for (const s of o.params) {
      const size = s.fullShape.reduce((a, b) => a * b, 1);
      if (!full.has(s.name)) full.set(s.name, new Float64Array(size).fill(NaN));
      const t = full.get(s.name)!;
      const cols = s.fullShape[1] ?? 1, localCols = s.shape[1] ?? 1;
      for (let e = 0; e < s.data.length; e++) {
        const r = Math.floor(e / localCols), c = e % localCols;
        const idx = s.splitDim === 1
          ? r * cols + s.sliceStart + c
          : s.splitDim === 0
          ? s.sliceStart * cols + e
          : e;
        if (!Number.isNaN(t[idx])) assert.equal(t[idx], s.data[e], `replicas of ${s.name}[${idx}] differ`);
        t[idx] = s.data[e];
      }
    }
  }
  for (const [name, t] of full) assert.ok(!t.some(Number.isNaN), `${name}: some elements held by no rank`);
  return full;
}

if (import.meta.main) {
  const [tp, pp, dp, zero1, steps, nMicro] = Deno.args.slice(0, 6).map(Number);
  const out = Deno.args[6], flags = Deno.args.slice(7);
  const packed = flags.includes("packed"), cuda = flags.includes("cuda");
  const dims = cuda ? CUDA_DIMS : DIMS;
  await setNumThreads(1);
  const { rank } = await distInit();
  using model = await NativeModel.create(dims, OPTIM, { seed: 42, initStd: 0.05 }, {
    tp,
    pp,
    dp,
    zero1: zero1 === 1,
    ...(cuda ? { device: "cuda" as const } : {}),
  });
  const r = model.rank;
  const perRank = nMicro / dp, rows = perRank * MICRO * SEQ;
  const losses: number[] = [], norms: number[] = [];
  for (let s = 0; s < steps; s++) {
    const g = globalBatch(s, nMicro, dims.vocabSize);
    const slice = (a: Int32Array | Float32Array) => a.slice(r.dpRank * rows, (r.dpRank + 1) * rows);
    const res = await model.trainStep({
      tokens: slice(g.tokens) as Int32Array,
      targets: slice(g.targets) as Int32Array,
      lossMask: slice(g.lossMask) as Float32Array,
      segmentIds: packed ? slice(packedSegments(s, g.tokens.length)) as Int32Array : undefined,
      nMicro: perRank,
      batch: MICRO,
      seq: SEQ,
    });
    losses.push(res.loss);
    norms.push(res.gradNorm);
  }
  const params = model.params().map((p) => ({ ...p, data: Array.from(model.read(p.name)) }));
  Deno.writeTextFileSync(
    join(out, `rank-${String(rank).padStart(2, "0")}.json`),
    JSON.stringify({ rank: r, losses, norms, params }),
  );
  model.dispose();
  distFinalize();
}
