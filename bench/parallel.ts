/**
 * `deno task bench parallel`: for a fixed global batch, the step time and the bytes each rank sends per step
 * for every layout, next to the theoretical volumes — ring all-reduce 2(n−1)/n · gradient bytes over DP;
 * 4 all-reduces of B·T·d values per layer per micro-batch over TP (ring: 2(t−1)/t of it sent per rank); one
 * B·T·d activation and one gradient per micro-batch per stage boundary over PP — and the measured pipeline
 * bubble (time blocked in pipeline receives / step time) next to (P−1)/(M+P−1).
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runRanks } from "../parallel/launcher.ts";
import { BENCH } from "./parallel/worker.ts";
import { benchMain, defineBench } from "./common.ts";

const WORKER = fileURLToPath(new URL("./parallel/worker.ts", import.meta.url));
const LAYOUTS: [number, number, number][] = [
  [1, 1, 1],
  [2, 1, 1],
  [1, 2, 1],
  [1, 1, 2],
  [2, 2, 1],
  [2, 1, 2],
  [1, 2, 2],
  [2, 2, 2],
  [1, 4, 1],
];

interface RankOut {
  rank: {
    tp: number;
    pp: number;
    dp: number;
    tpRank: number;
    ppRank: number;
    dpRank: number;
    numLayers: number;
  };
  flat: number;
  steps: { seconds: number; stats: { tpBytes: number; dpBytes: number; ppBytes: number; ppWaitS: number } }[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b: number) => (b / 2 ** 20).toFixed(2);

async function runLayout(tp: number, pp: number, dp: number): Promise<RankOut[]> {
  const dir = await Deno.makeTempDir({ prefix: "meditron-bench-par-" });
  try {
    const program = [Deno.execPath(), "run", "-A", WORKER, String(tp), String(pp), String(dp), dir];
    const out = await runRanks(program, tp * pp * dp);
    if (!out.success) {
      throw new Error(
        `layout ${tp}x${pp}x${dp} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
      );
    }
    return [...Deno.readDirSync(dir)].map((e) => JSON.parse(Deno.readTextFileSync(join(dir, e.name))));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs every layout and prints the table. */
async function run(): Promise<void> {
  const { dims, micro, seq, nMicro } = BENCH;
  const btd = micro * seq * dims.dim * 4; // bytes of one B·T·d activation
  console.log(
    `parallel: dim ${dims.dim}, ${dims.nLayers} layers, ${dims.nHeads}/${dims.nKvHeads} heads, vocab ${dims.vocabSize}; ` +
      `global batch ${nMicro} micro-batches x ${micro} x ${seq} tokens; median of ${BENCH.steps} steps; ` +
      `${navigator.hardwareConcurrency} cores shared by all ranks (oversubscribed: times compare layouts, not hardware)`,
  );
  console.log(
    "layout tp×pp×dp | step s | DP MiB/rank meas / theory | TP MiB/rank meas / theory | PP MiB/rank meas / theory | bubble meas / theory",
  );
  for (const [tp, pp, dp] of LAYOUTS) {
    const outs = await runLayout(tp, pp, dp);
    const step = median(outs.flatMap((o) => o.steps.map((s) => s.seconds)));
    const avg = (f: (o: RankOut) => number) => outs.reduce((a, o) => a + f(o), 0) / outs.length;
    const meas = (k: "tpBytes" | "dpBytes" | "ppBytes") => avg((o) => median(o.steps.map((s) => s.stats[k])));
    const m = nMicro / dp;
    const dpTheory = avg((o) => (dp > 1 ? (2 * (dp - 1) / dp) * o.flat * 4 : 0));
    const tpTheory = avg((o) => (tp > 1 ? 4 * o.rank.numLayers * m * (2 * (tp - 1) / tp) * btd : 0));
    const ppTheory = avg((o) => ((o.rank.ppRank < pp - 1 ? 1 : 0) + (o.rank.ppRank > 0 ? 1 : 0)) * m * btd);
    const bubble = pp > 1 ? avg((o) => median(o.steps.map((s) => s.stats.ppWaitS / s.seconds))) : 0;
    const bubbleTheory = (pp - 1) / (m + pp - 1);
    console.log(
      `${tp}×${pp}×${dp}`.padEnd(16) + ` | ${step.toFixed(2).padStart(6)} | ` +
        `${mb(meas("dpBytes")).padStart(8)} / ${mb(dpTheory).padEnd(8)}      | ` +
        `${mb(meas("tpBytes")).padStart(8)} / ${mb(tpTheory).padEnd(8)}      | ` +
        `${mb(meas("ppBytes")).padStart(8)} / ${mb(ppTheory).padEnd(8)}      | ` +
        `${(100 * bubble).toFixed(0)}% / ${(100 * bubbleTheory).toFixed(0)}%`,
    );
  }
  console.log(
    "TP measured also carries the vocab-parallel embedding (1 all-reduce of B·T·d per micro-batch on the first stage),\n" +
      "the head's input gradient (1 on the last stage) and the cross-entropy's per-row max/sum reductions.",
  );
}

/** `deno task bench parallel`. */
export const bench = defineBench({
  name: "parallel",
  measures:
    `For a fixed global batch on a small Llama (bench/parallel/worker.ts), every DP x TP x PP layout up to 8 ranks
(mpirun; ranks share this machine's cores, so times compare layouts, not hardware): the step time, the bytes
each rank sends per step over DP, TP and PP, and the pipeline bubble (time blocked in pipeline receives).`,
  peer: `theory: ring all-reduce volumes over DP and TP; one activation and one gradient per micro-batch per
stage boundary over PP; bubble (P−1)/(M+P−1)`,
  options: {},
  run,
});

if (import.meta.main) await benchMain(bench);
