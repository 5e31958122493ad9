// One rank of a layout-equality run (started by tests/parallel/layouts_test.ts, under mpirun for > 1 rank):
// trains a tiny GQA model for a few steps on fixed global batches and writes its per-step losses and its
// parameter shards (with their place in the full tensors) to OUT/rank-XX.json. An optional 8th argument
// `packed` gives every row segment ids (several examples per row).
import { join } from "node:path";
import { distFinalize, distInit, NativeModel, setNumThreads } from "../../runtime/mod.ts";

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
export function globalBatch(step: number, nMicro: number) {
  const n = nMicro * MICRO * SEQ;
  const tokens = Int32Array.from(
    { length: n },
    (_, i) => (i * 37 + step * 101 + ((i * i) % 7)) % DIMS.vocabSize,
  );
  const targets = Int32Array.from({ length: n }, (_, i) => (tokens[i] * 13 + 5 + step) % DIMS.vocabSize);
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

if (import.meta.main) {
  const [tp, pp, dp, zero1, steps, nMicro] = Deno.args.slice(0, 6).map(Number);
  const out = Deno.args[6], packed = Deno.args[7] === "packed";
  await setNumThreads(1);
  const { rank } = await distInit();
  using model = await NativeModel.create(DIMS, OPTIM, { seed: 42, initStd: 0.05 }, {
    tp,
    pp,
    dp,
    zero1: zero1 === 1,
  });
  const r = model.rank;
  const perRank = nMicro / dp, rows = perRank * MICRO * SEQ;
  const losses: number[] = [], norms: number[] = [];
  for (let s = 0; s < steps; s++) {
    const g = globalBatch(s, nMicro);
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
