/**
 * `deno task bench NAME [options]`: benchmarks that print ratios against a named peer measured in the same run.
 * `deno task bench NAME --help` prints what NAME measures, its peer and its options (bench/common.ts), and an
 * unknown or malformed option is one `error:` line, before any work.
 *
 * @module
 */
import { runMain, UsageError } from "../cli/common.ts";
import { type Bench, benchHelp, type BenchOptions, runBench, usageLine, wantsHelp } from "./common.ts";

/**
 * What a benchmark module exports: its declaration ({@linkcode Bench}), or a `main` that reads its own arguments
 * and its `HELP` (bench/gpu/gpu.ts, which must run on a bare Deno without npm packages).
 */
export type BenchModule = { bench: Bench<BenchOptions> } | {
  main(args: string[]): Promise<void>;
  HELP: string;
};

/** One benchmark of the list: a line for `deno task bench`, and its module, loaded on demand. */
export interface BenchEntry {
  /** One line for the list. */
  about: string;
  /** Imports the module. */
  load: () => Promise<BenchModule>;
}

/** Every benchmark, by name. */
export const BENCHES: Record<string, BenchEntry> = {
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

const HELP = [
  "Usage: deno task bench NAME [options]",
  "",
  "Benchmarks:",
  ...Object.entries(BENCHES).map(([k, b]) => `  ${k.padEnd(18)} ${b.about}`),
  "",
  "deno task bench NAME --help: what NAME measures, against which peer, and its options.",
  "",
  "Example:",
  "  deno task bench train-cpu --steps 5",
].join("\n");

/** The help of benchmark `name`: from its declaration, or the module's own `HELP`. */
export async function benchHelpFor(name: string): Promise<string> {
  const mod = await BENCHES[name].load();
  return "bench" in mod ? benchHelp(mod.bench) : mod.HELP;
}

/** `deno task bench [NAME [options]]`. */
async function main(args: string[]): Promise<void> {
  const [name, ...rest] = args.filter((a) => a !== "--debug");
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(HELP);
    return;
  }
  const entry = Object.hasOwn(BENCHES, name) ? BENCHES[name] : undefined;
  if (!entry) {
    throw new UsageError(`unknown benchmark '${name}' (benchmarks: ${Object.keys(BENCHES).join(", ")})`);
  }
  if (wantsHelp(rest)) {
    console.log(await benchHelpFor(name));
    return;
  }
  const mod = await entry.load();
  await ("bench" in mod ? runBench(mod.bench, rest) : mod.main(rest));
}

if (import.meta.main) {
  const name = Deno.args.find((a) => a !== "--debug");
  await runMain(main, name !== undefined && Object.hasOwn(BENCHES, name) ? usageLine(name) : HELP);
}
