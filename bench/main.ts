/**
 * `deno task bench NAME [options]`: benchmarks that print ratios against a named peer measured in the same run.
 *
 * @module
 */
const BENCHES: Record<
  string,
  { about: string; load: () => Promise<{ main(args: string[]): Promise<void> }> }
> = {
  "train-cpu": {
    about: "training step tokens/s vs PyTorch CPU, GFLOP/s vs OpenBLAS sgemm",
    load: () => import("./train_cpu.ts"),
  },
  "attention-memory": {
    about: "peak memory of attention fwd+bwd at T=2048 (tiled vs a T×T matrix)",
    load: () => import("./attention_memory.ts"),
  },
  parallel: {
    about: "step time, bytes per rank and pipeline bubble of each DP×TP×PP layout vs theory (mpirun)",
    load: () => import("./parallel.ts"),
  },
  clean: {
    about: "GAP-Replay cleaning MB/s per source (guidelines, abstracts, S2ORC papers)",
    load: () => import("./clean.ts"),
  },
  prepare: {
    about: "tokenize MB/s with 1 and 2 workers, and data prepare end to end",
    load: () => import("./prepare.ts"),
  },
  decode: {
    about: "KV-cache decode tokens/s (batch 1, 16) and loglik questions/s vs PyTorch CPU",
    load: () => import("./decode.ts"),
  },
  convert: {
    about: "conversion MB/s on a >= 1 GB synthetic checkpoint vs cp, peak RSS vs the largest tensor",
    load: () => import("./convert.ts"),
  },
  preemption: {
    about: "SIGKILL a run at random moments (--trials 20) and resume: the loss curve must be bit-identical",
    load: () => import("./preemption.ts"),
  },
  fuzz: {
    about: "seeded fuzzing of every parser and the C ABI (--cases 10000): crashes and hangs must be 0",
    load: () => import("./fuzz.ts"),
  },
  serve: {
    about:
      "OpenAI-compatible server: requests/s and tokens/s at 1, 4, 16 clients, batching gain over one-at-a-time",
    load: () => import("./serve.ts"),
  },
  gpu: {
    about: "CUDA backend (GPU machine; bench/gpu/run.sh): check vs CPU, train MFU vs PyTorch, decode tok/s",
    load: () => import("./gpu/gpu.ts"),
  },
  "sft-packing": {
    about: "SFT epoch time and useful tokens/s: packed rows (segment ids) vs padded batches",
    load: () => import("./sft_packing.ts"),
  },
  tokenizer: {
    about: "tokenizer MB/s vs HF tokenizers (Rust, npm @anush008/tokenizers)",
    load: () => import("./tokenizer.ts"),
  },
};

const [name, ...rest] = Deno.args;
if (!name || name === "--help" || name === "-h" || !BENCHES[name]) {
  console.log("Usage: deno task bench NAME [options]\n\nBenchmarks:");
  for (const [k, b] of Object.entries(BENCHES)) console.log(`  ${k.padEnd(18)} ${b.about}`);
  console.log("\nExample:\n  deno task bench train-cpu --steps 5");
  if (name && name !== "--help" && name !== "-h") {
    console.error(`\nerror: unknown benchmark '${name}'`);
    Deno.exit(1);
  }
} else {
  await (await BENCHES[name].load()).main(rest);
}
