// One rank of `deno task bench parallel` (started under mpirun): times training steps of a fixed global batch
// and records this rank's communication counters; writes OUT/rank-XX.json.
import { join } from "node:path";
import { distFinalize, distInit, NativeModel, setNumThreads } from "../../runtime/mod.ts";

/** Model and batch of the benchmark (a small Llama-2 with the real vocabulary). */
export const BENCH = {
  dims: {
    dim: 256,
    nLayers: 4,
    nHeads: 8,
    nKvHeads: 4,
    ffnDim: 704,
    vocabSize: 32000,
    maxSeq: 128,
    normEps: 1e-5,
    ropeTheta: 1e4,
  },
  micro: 2,
  seq: 128,
  nMicro: 8,
  steps: 3,
};

if (import.meta.main) {
  const [tp, pp, dp] = Deno.args.slice(0, 3).map(Number);
  const out = Deno.args[3];
  await setNumThreads(1);
  const { rank } = await distInit();
  const optim = {
    lr: 1e-4,
    minLr: 1e-5,
    warmupSteps: 0,
    decaySteps: 100,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    gradClip: 1,
  };
  using model = await NativeModel.create(BENCH.dims, optim, { seed: 1, initStd: 0.02 }, { tp, pp, dp });
  const r = model.rank, perRank = BENCH.nMicro / dp, n = perRank * BENCH.micro * BENCH.seq;
  const tokens = Int32Array.from({ length: n }, (_, i) => (i * 7919 + r.dpRank * 13) % BENCH.dims.vocabSize);
  const targets = tokens.map((t) => (t * 31 + 7) % BENCH.dims.vocabSize);
  const lossMask = new Float32Array(n).fill(1);
  const steps: { seconds: number; stats: ReturnType<NativeModel["commStats"]> }[] = [];
  for (let s = 0; s <= BENCH.steps; s++) {
    model.commStats(true);
    const t0 = performance.now();
    await model.trainStep({ tokens, targets, lossMask, nMicro: perRank, batch: BENCH.micro, seq: BENCH.seq });
    const seconds = (performance.now() - t0) / 1000;
    if (s > 0) steps.push({ seconds, stats: model.commStats() }); // step 0 warms up
  }
  Deno.writeTextFileSync(
    join(out, `rank-${String(rank).padStart(2, "0")}.json`),
    JSON.stringify({ rank: r, flat: model.optimChunk.flatSize, steps }),
  );
  model.dispose();
  distFinalize();
}
