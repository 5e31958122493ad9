/**
 * `deno task bench decode`: decode tokens/s at batch 1 and 16 (greedy, KV cache) and log-likelihood
 * questions/s (a 256-token context, 4 one-token options, as in MedQA letter scoring) on the stories15M shape,
 * next to PyTorch (Debian's python3-torch) doing the same work in the same run.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { KvCache, NativeModel, setNumThreads } from "../runtime/mod.ts";
import { NativeLanguageModel } from "../models/lm.ts";
import { argmax } from "../models/sampling.ts";
import { SHAPE } from "./train_cpu.ts";
import { benchMain, defineBench } from "./common.ts";

const WORK = { prompt: 64, new_tokens: 64, context: 256, questions: 20, threads: 2 };

async function ours() {
  await setNumThreads(WORK.threads);
  using m = await NativeModel.create(
    {
      dim: SHAPE.dim,
      nLayers: SHAPE.n_layers,
      nHeads: SHAPE.n_heads,
      nKvHeads: SHAPE.n_kv_heads,
      ffnDim: SHAPE.ffn_dim,
      vocabSize: SHAPE.vocab_size,
      maxSeq: 512,
      normEps: 1e-5,
      ropeTheta: 10000,
    },
    {
      lr: 0,
      minLr: 0,
      warmupSteps: 0,
      decaySteps: 1,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      gradClip: 0,
    },
    { seed: 0, initStd: 0.02 },
  );
  const V = SHAPE.vocab_size, out: Record<string, number> = {};
  for (const B of [1, 16]) {
    using kv = KvCache.create(m, B, 512);
    const seqs = Array.from({ length: B }, (_, b) => b);
    const prompt = seqs.flatMap((b) => Array.from({ length: WORK.prompt }, (_, i) => (i * 31 + b * 7) % V));
    const rows = seqs.flatMap((b) => Array(WORK.prompt).fill(b));
    let logits = await kv.decode(rows, prompt, rows.map((_, i) => i % WORK.prompt === WORK.prompt - 1));
    let next = seqs.map((b) => argmax(logits.subarray(b * V, (b + 1) * V)));
    const t0 = performance.now();
    for (let i = 0; i < WORK.new_tokens; i++) {
      logits = await kv.decode(seqs, next);
      next = seqs.map((b) => argmax(logits.subarray(b * V, (b + 1) * V)));
    }
    out[`decode_b${B}_tokens_per_s`] = (B * WORK.new_tokens) / ((performance.now() - t0) / 1000);
  }
  using lm = new NativeLanguageModel(m);
  const t0 = performance.now();
  for (let q = 0; q < WORK.questions; q++) {
    const ctx = Array.from({ length: WORK.context }, (_, i) => (i * 17 + q) % V);
    await lm.score(ctx, [[319], [350], [315], [360]]);
  }
  out.loglik_questions_per_s = WORK.questions / ((performance.now() - t0) / 1000);
  return out;
}

async function pytorch(): Promise<Record<string, number | string> | string> {
  const script = fileURLToPath(new URL("./peers/torch_decode.py", import.meta.url));
  const cfg = JSON.stringify({ ...SHAPE, ...WORK, max_seq: 512 });
  try {
    const o = await new Deno.Command("/usr/bin/python3", {
      args: [script, cfg],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!o.success) return `pytorch failed: ${new TextDecoder().decode(o.stderr).trim().split("\n").at(-1)}`;
    return JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").at(-1)!);
  } catch (e) {
    return `pytorch unavailable (${(e as Error).message}); install Debian's python3-torch`;
  }
}

/** Runs the benchmark and prints the table. */
async function run(): Promise<void> {
  console.log(
    `decode: stories15M shape (dim 288, 6 layers, vocab 32000), ${WORK.threads} threads; ${
      JSON.stringify(WORK)
    }`,
  );
  const me = await ours(), peer = await pytorch();
  for (const k of ["decode_b1_tokens_per_s", "decode_b16_tokens_per_s", "loglik_questions_per_s"]) {
    const p = typeof peer === "string" ? undefined : Number(peer[k]);
    console.log(
      `  ${k.padEnd(26)} ours ${me[k].toFixed(1).padStart(8)}` +
        (p ? `   pytorch ${p.toFixed(1).padStart(8)}   ratio ${(me[k] / p).toFixed(2)}x` : ""),
    );
  }
  if (typeof peer === "string") console.log(`  ${peer}`);
  else console.log(`  peer: ${peer.peer}`);
}

/** `deno task bench decode`. */
export const bench = defineBench({
  name: "decode",
  measures:
    `Greedy KV-cache decode tokens/s at batch 1 and 16 (${WORK.prompt}-token prompts, ${WORK.new_tokens} new tokens) and
log-likelihood questions/s (${WORK.questions} questions: a ${WORK.context}-token context, 4 one-token options, as in
MedQA letter scoring) on the stories15M shape (dim 288, 6 layers, vocab 32000), ${WORK.threads} threads.`,
  peer: "PyTorch on the CPU (Debian's python3-torch, /usr/bin/python3) doing the same work, same threads",
  options: {},
  run,
});

if (import.meta.main) await benchMain(bench);
