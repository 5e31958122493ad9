/**
 * `deno task bench train-cpu`: tokens/s of one training step (forward + backward + AdamW) on the stories15M
 * shape, next to PyTorch (Debian's python3-torch, /usr/bin/python3) training the same model in the same run,
 * and our achieved GFLOP/s next to OpenBLAS's sgemm rate measured in the same process.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { native, NativeModel, setNumThreads } from "../runtime/mod.ts";
import { benchMain, defineBench } from "./common.ts";

/** stories15M: dim 288, 6 layers, 6 heads, ffn 768, vocab 32000, seq 256, batch 8. */
export const SHAPE = {
  dim: 288,
  n_layers: 6,
  n_heads: 6,
  n_kv_heads: 6,
  ffn_dim: 768,
  vocab_size: 32000,
  seq: 256,
  batch: 8,
};

/** Training FLOPs per token: 6·(linear + head parameters) + 6·L·d·T (attention), as in the MFU formula. */
export function trainFlopsPerToken(s: typeof SHAPE): number {
  const hd = s.dim / s.n_heads;
  const perLayer = s.dim * (s.n_heads * hd) * 2 + s.dim * (s.n_kv_heads * hd) * 2 + 3 * s.dim * s.ffn_dim;
  return 6 * (s.n_layers * perLayer + s.vocab_size * s.dim) + 6 * s.n_layers * s.dim * s.seq;
}

async function ours(steps: number, threads: number): Promise<{ stepS: number; tokensPerS: number }> {
  await setNumThreads(threads);
  using m = await NativeModel.create(
    {
      dim: SHAPE.dim,
      nLayers: SHAPE.n_layers,
      nHeads: SHAPE.n_heads,
      nKvHeads: SHAPE.n_kv_heads,
      ffnDim: SHAPE.ffn_dim,
      vocabSize: SHAPE.vocab_size,
      maxSeq: SHAPE.seq,
      normEps: 1e-5,
      ropeTheta: 10000,
    },
    {
      lr: 1e-4,
      minLr: 1e-5,
      warmupSteps: 0,
      decaySteps: 100,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-5,
      weightDecay: 0.1,
      gradClip: 1,
    },
    { seed: 0, initStd: 0.02 },
  );
  const n = SHAPE.batch * SHAPE.seq;
  const tokens = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % SHAPE.vocab_size);
  const targets = Int32Array.from({ length: n }, (_, i) => (i * 104729 + 7) % SHAPE.vocab_size);
  const lossMask = new Float32Array(n).fill(1);
  const times: number[] = [];
  for (let i = 0; i < steps + 1; i++) {
    const t0 = performance.now();
    await m.trainStep({ tokens, targets, lossMask, nMicro: 1, batch: SHAPE.batch, seq: SHAPE.seq });
    if (i > 0) times.push((performance.now() - t0) / 1000); // first step warms up
  }
  const stepS = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  return { stepS, tokensPerS: n / stepS };
}

async function pytorch(
  steps: number,
  threads: number,
): Promise<{ peer: string; tokens_per_s: number } | string> {
  const script = fileURLToPath(new URL("./peers/torch_train.py", import.meta.url));
  const cfg = JSON.stringify({ ...SHAPE, threads, steps, warmup: 1 });
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [script, cfg],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      return `pytorch failed: ${new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)}`;
    }
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } catch (e) {
    return `pytorch unavailable (${(e as Error).message}); install Debian's python3-torch`;
  }
}

async function sgemmRate(): Promise<{ shape: string; gflops: number }[]> {
  const lib = await native();
  const shapes: [number, number, number][] = [[2048, 32000, 288], [2048, 768, 288], [1024, 1024, 1024]];
  const out = [];
  for (const [M, N, K] of shapes) {
    const g = new Float64Array(1);
    await lib.mt_bench_sgemm(M, N, K, 5, g);
    out.push({ shape: `${M}x${N}x${K}`, gflops: g[0] });
  }
  return out;
}

/** Runs the benchmark and prints the table. */
async function run({ steps, threads }: { steps: number; threads: number }): Promise<void> {
  const flops = trainFlopsPerToken(SHAPE);
  console.log(
    `train-cpu: stories15M shape ${JSON.stringify(SHAPE)}, ${threads} threads, median of ${steps} steps`,
  );
  const gemm = await sgemmRate();
  const me = await ours(steps, threads);
  const peer = await pytorch(steps, threads);
  const myGflops = (me.tokensPerS * flops) / 1e9;
  const best = Math.max(...gemm.map((g) => g.gflops));
  console.log(
    `  ours (libmeditron)    ${me.tokensPerS.toFixed(0).padStart(7)} tokens/s  ${
      myGflops.toFixed(1)
    } GFLOP/s`,
  );
  if (typeof peer === "string") console.log(`  ${peer}`);
  else {
    console.log(`  ${peer.peer.padEnd(22)}${peer.tokens_per_s.toFixed(0).padStart(7)} tokens/s`);
    console.log(
      `  ratio ours/pytorch    ${(me.tokensPerS / peer.tokens_per_s).toFixed(2)}x  (target >= 1.5x)`,
    );
  }
  for (const g of gemm) console.log(`  OpenBLAS sgemm ${g.shape.padEnd(16)} ${g.gflops.toFixed(1)} GFLOP/s`);
  console.log(`  ours / best sgemm     ${(100 * myGflops / best).toFixed(0)}%  (target >= 75%)`);
}

/** `deno task bench train-cpu`. */
export const bench = defineBench({
  name: "train-cpu",
  measures:
    `Tokens/s of one training step (forward + backward + AdamW; median of --steps after a warm-up step) on
the stories15M shape (dim 288, 6 layers, 6 heads, ffn 768, vocab 32000, seq 256, batch 8), and the GFLOP/s
that makes next to OpenBLAS's sgemm rate on the model's matrix shapes, measured in the same process.`,
  peer: "PyTorch on the CPU (Debian's python3-torch, /usr/bin/python3) training the same model, same threads",
  options: {
    steps: {
      type: "int",
      default: 5,
      min: 1,
      help: "timed steps, ours and PyTorch's; the median is reported",
    },
    threads: { type: "int", default: 2, min: 1, help: "threads, ours and PyTorch's" },
  },
  run,
});

if (import.meta.main) await benchMain(bench);
