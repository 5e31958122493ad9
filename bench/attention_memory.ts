/**
 * `deno task bench attention-memory`: peak memory of the attention kernel (forward + backward) at T = 2048 on
 * Llama-2-7B heads (32 × 128), measured as the growth of the process's peak RSS (VmHWM) during the calls,
 * next to the B·H·T² floats a kernel that materialises the score matrix would need.
 *
 * @module
 */
import { attentionBackward, attentionForward } from "../runtime/mod.ts";
import { benchMain, defineBench } from "./common.ts";

function peakRssBytes(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Runs the benchmark and prints the figures. */
async function run({ seq: T }: { seq: number }): Promise<void> {
  const B = 1, H = 32, KVH = 32, hd = 128;
  const s = { B, T, H, KVH, hd };
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const q = fill(B * T * H * hd), k = fill(B * T * KVH * hd), v = fill(B * T * KVH * hd);
  const dout = fill(q.length);
  // Pre-touch the output buffers the wrappers allocate, so only kernel scratch shows up as growth.
  const before = peakRssBytes();
  const t0 = performance.now();
  const { out, lse } = await attentionForward(q, k, v, s);
  const fwd = performance.now() - t0;
  const afterFwd = peakRssBytes();
  const t1 = performance.now();
  await attentionBackward(q, k, v, out, lse, dout, s);
  const bwd = performance.now() - t1;
  const afterBwd = peakRssBytes();
  const io = (out.byteLength + lse.byteLength) + 3 * q.byteLength; // outputs of fwd + dq, dk, dv
  const scores = B * H * T * T * 4;
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  console.log(`attention-memory: B ${B}, T ${T}, ${H} heads x ${hd} (Llama-2-7B), fp32`);
  console.log(`  inputs q, k, v, dout         ${mib(4 * q.byteLength)} MiB`);
  console.log(
    `  peak RSS growth, forward     ${mib(afterFwd - before)} MiB (incl. ${
      mib(out.byteLength + lse.byteLength)
    } MiB outputs)`,
  );
  console.log(
    `  peak RSS growth, fwd + bwd   ${mib(afterBwd - before)} MiB (incl. ${mib(io)} MiB outputs and grads)`,
  );
  console.log(`  kernel scratch (growth - io) ${mib(Math.max(0, afterBwd - before - io))} MiB`);
  console.log(`  a T x T score matrix per head would need ${mib(scores)} MiB (B·H·T²·4 bytes)`);
  console.log(`  time: forward ${fwd.toFixed(0)} ms, backward ${bwd.toFixed(0)} ms`);
}

/** `deno task bench attention-memory`. */
export const bench = defineBench({
  name: "attention-memory",
  measures:
    `Peak memory of the attention kernel, forward + backward, on Llama-2-7B heads (32 x 128, batch 1, fp32): the
growth of the process's peak RSS (VmHWM) during the calls, less the outputs and gradients, and the time of each.`,
  peer: "theory: the B·H·T² floats of a kernel that materialises the T x T score matrix",
  options: { seq: { type: "int", default: 2048, min: 1, arg: "T", help: "sequence length T" } },
  run,
});

if (import.meta.main) await benchMain(bench);
