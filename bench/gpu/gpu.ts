/**
 * `deno task bench gpu <check|train|decode> [--out FILE] [--dry-run] [--small-only]`: the CUDA backend on a GPU machine,
 * driven by bench/gpu/run.sh (which builds the library and runs the PyTorch peer in the same run).
 *
 * - `check`: CUDA vs the CPU backend of the same library on the same weights and batch (loss within 1e-2
 *   relative, every gradient's cosine similarity > 0.999, logits), three training steps, selective recompute
 *   equal to storing, KV-cache decoding equal to full recomputation; head_dim 64 and 128 (GQA, T = 200) once
 *   with the tensor-core attention and once with MEDITRON_CUDA_ATTENTION=simple; writes the weights as an HF directory plus
 *   the batch and the CUDA logits for bench/gpu/hf_check.py (transformers' LlamaForCausalLM).
 * - `train`: tokens/s and MFU of a training step on Llama-2-7B-shaped layers (d 4096, 32 heads, ffn 11008,
 *   seq 2048, vocab 32000), with as many layers and as large a micro-batch as fit.
 * - `decode`: KV-cache decode tokens/s at batch 1 and 64 on the same layers.
 *
 * Imports only runtime/ and node: modules, so it runs with a bare Deno binary (no npm packages on the GPU
 * machine). `--dry-run` runs the same code on the CPU backend with tiny shapes (what CI-less machines can check).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { KvCache, MeditronError, NativeModel } from "../../runtime/mod.ts";
import type { Device, ModelDims, OptimSettings } from "../../runtime/ffi.ts";

const OPTIM: OptimSettings = {
  lr: 3e-4,
  minLr: 3e-5,
  warmupSteps: 2,
  decaySteps: 100,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1,
};

/** One check's outcome. */
interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function dims(d: number, L: number, H: number, KV: number, F: number, V: number, maxSeq: number): ModelDims {
  return {
    dim: d,
    nLayers: L,
    nHeads: H,
    nKvHeads: KV,
    ffnDim: F,
    vocabSize: V,
    maxSeq,
    normEps: 1e-5,
    ropeTheta: 10000,
  };
}

/** Deterministic pseudo-random ids (a fixed LCG: the same batch in every run and in Python). */
function ids(n: number, vocab: number, seed: number): Int32Array {
  let s = BigInt(seed) * 6364136223846793005n + 1442695040888963407n;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    out[i] = Number((s >> 33n) % BigInt(vocab));
  }
  return out;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  return aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) num += (a[i] - b[i]) ** 2, den += b[i] ** 2;
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function argmax(x: Float32Array, from: number, n: number): number {
  let best = from;
  for (let i = from; i < from + n; i++) if (x[i] > x[best]) best = i;
  return best - from;
}

async function create(d: ModelDims, device: Device, recompute = false): Promise<NativeModel> {
  return await NativeModel.create(d, OPTIM, { seed: 1234, initStd: 0.02 }, {
    tp: 1,
    pp: 1,
    dp: 1,
    device,
    recompute: recompute ? "selective" : "none",
  });
}

/**
 * Segment ids of packed rows: row r cut into segments of lengths cycling through `lens` (shifted by r), so
 * segment starts fall inside, at the edge of and across the kernels' 64-row tiles.
 */
function packedIds(B: number, T: number): Int32Array {
  const lens = [37, 64, 5, 90, 128, 1, 70];
  const seg = new Int32Array(B * T);
  for (let r = 0; r < B; r++) {
    let id = 0, left = lens[r % lens.length];
    for (let t = 0; t < T; t++) {
      if (left === 0) id++, left = lens[(r + id) % lens.length];
      seg[r * T + t] = id, left--;
    }
  }
  return seg;
}

/** CUDA (or, dry, a second CPU model) against the CPU backend on one configuration; `seg`: packed rows. */
async function compareBackends(
  label: string,
  d: ModelDims,
  B: number,
  T: number,
  dev: Device,
  checks: Check[],
  hfOut?: string,
  seg?: Int32Array,
): Promise<void> {
  const n = B * T;
  const tokens = ids(n, d.vocabSize, 1), targets = ids(n, d.vocabSize, 2);
  const mask = new Float32Array(n).fill(1);
  for (let i = 0; i < n; i += 7) mask[i] = 0; // some masked positions
  using cpu = await create(d, "cpu");
  using gpu = await create(d, dev);
  using rc = await create(d, dev, true);
  // Same seed → the same host initialisation; copy anyway so the check does not depend on it.
  for (const p of cpu.params()) gpu.write(p.name, cpu.read(p.name)), rc.write(p.name, cpu.read(p.name));
  const count = mask.reduce((a, b) => a + b, 0);
  const lc = await cpu.forwardBackward(tokens, targets, mask, B, T, count, seg);
  const lg = await gpu.forwardBackward(tokens, targets, mask, B, T, count, seg);
  const lr = await rc.forwardBackward(tokens, targets, mask, B, T, count, seg);
  const rel = Math.abs(lg - lc) / Math.abs(lc);
  checks.push({
    name: `${label}: loss vs CPU`,
    ok: rel <= 1e-2,
    detail: `${lg / count} vs ${lc / count}, rel ${rel.toExponential(2)}`,
  });
  let minCos = 1, worst = "", minCosRc = 1;
  const perTensor: Record<string, number> = {}; // for diagnosis: which backward piece is off
  for (const p of cpu.params()) {
    const gc = cpu.read(p.name, "grad"), gg = gpu.read(p.name, "grad"), gr = rc.read(p.name, "grad");
    const c = cosine(gg, gc);
    perTensor[p.name] = Number(c.toFixed(6));
    if (c < minCos) minCos = c, worst = p.name;
    minCosRc = Math.min(minCosRc, cosine(gr, gg));
  }
  console.log(`${label}: grad cosine per tensor ${JSON.stringify(perTensor)}`);
  checks.push({
    name: `${label}: grad cosine vs CPU`,
    ok: minCos > 0.999,
    detail: `min ${minCos.toFixed(5)} (${worst})`,
  });
  const relRc = Math.abs(lr - lg) / Math.abs(lg);
  checks.push({
    name: `${label}: recompute selective = stored`,
    ok: relRc <= 1e-4 && minCosRc > 0.99999,
    detail: `loss rel ${relRc.toExponential(2)}, grad cosine min ${minCosRc.toFixed(6)}`,
  });
  const logC = await cpu.logits(tokens, B, T, seg), logG = await gpu.logits(tokens, B, T, seg);
  const rl = relL2(logG, logC);
  checks.push({
    name: `${label}: logits vs CPU`,
    ok: rl < 2e-2,
    detail: `relative L2 ${rl.toExponential(2)}`,
  });
  // Three optimizer steps from the same state.
  const batch = { tokens, targets, lossMask: mask, segmentIds: seg, nMicro: 1, batch: B, seq: T };
  cpu.zeroGrad(), gpu.zeroGrad();
  const traj: string[] = [];
  let worstStep = 0;
  for (let s = 0; s < 3; s++) {
    const a = await cpu.trainStep(batch), b = await gpu.trainStep(batch);
    worstStep = Math.max(worstStep, Math.abs(a.loss - b.loss) / a.loss);
    traj.push(`${b.loss.toFixed(4)}/${a.loss.toFixed(4)}`);
  }
  checks.push({
    name: `${label}: 3 train steps vs CPU`,
    ok: worstStep <= 1e-2,
    detail: `cuda/cpu ${traj.join(" ")}`,
  });
  if (hfOut) await writeHf(hfOut, d, gpu, tokens, targets, mask, B, T, await gpu.logits(tokens, B, T));
}

/** Decoding with the KV cache equals recomputing the whole prefix (two sequences, ragged lengths). */
async function checkDecode(label: string, d: ModelDims, dev: Device, checks: Check[]): Promise<void> {
  using m = await create(d, dev);
  const P = [23, 40], steps = 8, V = d.vocabSize;
  const seqs = P.map((p, s) => Array.from(ids(p + steps, V, 10 + s)));
  using kv = KvCache.create(m, 2, 64);
  let worst = 0, mismatch = 0;
  // Prefill both prompts (rows of a sequence consecutive), logits of their last rows.
  const rowsSeq = [...Array(P[0]).fill(0), ...Array(P[1]).fill(1)];
  const rowsTok = [...seqs[0].slice(0, P[0]), ...seqs[1].slice(0, P[1])];
  await kv.decode(rowsSeq, rowsTok);
  for (let t = 0; t < steps; t++) {
    const step = await kv.decode([0, 1], [seqs[0][P[0] + t], seqs[1][P[1] + t]]);
    for (let s = 0; s < 2; s++) {
      const len = P[s] + t + 1;
      const full = await m.logits(Int32Array.from(seqs[s].slice(0, len)), 1, len);
      const ref = full.subarray((len - 1) * V, len * V), got = step.subarray(s * V, (s + 1) * V);
      worst = Math.max(worst, relL2(got, ref));
      if (argmax(got, 0, V) !== argmax(ref, 0, V)) mismatch++;
    }
  }
  checks.push({
    name: `${label}: decode = full recompute`,
    ok: worst < 2e-2 && mismatch === 0,
    detail: `max relative L2 ${worst.toExponential(2)}, argmax mismatches ${mismatch}/${2 * steps}`,
  });
}

/** The model as an HF directory (fp32 safetensors) + the batch and logits for hf_check.py. */
async function writeHf(
  dir: string,
  d: ModelDims,
  m: NativeModel,
  tokens: Int32Array,
  targets: Int32Array,
  mask: Float32Array,
  B: number,
  T: number,
  logits: Float32Array,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const { writeSafetensors } = await import("../../models/safetensors.ts");
  await writeSafetensors(
    join(dir, "model.safetensors"),
    m.params().map((p) => ({ name: p.name, shape: p.shape, data: m.read(p.name) })),
    { format: "pt" },
  );
  // The fields transformers' LlamaConfig reads (models/convert/hf.ts writes the full set for exports; this
  // script avoids its npm imports).
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_act: "silu",
      hidden_size: d.dim,
      intermediate_size: d.ffnDim,
      num_hidden_layers: d.nLayers,
      num_attention_heads: d.nHeads,
      num_key_value_heads: d.nKvHeads,
      vocab_size: d.vocabSize,
      max_position_embeddings: d.maxSeq,
      rms_norm_eps: d.normEps,
      rope_theta: d.ropeTheta,
      tie_word_embeddings: false,
      torch_dtype: "float32",
    }),
  );
  await Deno.writeTextFile(
    join(dir, "batch.json"),
    JSON.stringify({
      B,
      T,
      tokens: Array.from(tokens),
      targets: Array.from(targets),
      mask: Array.from(mask),
    }),
  );
  await Deno.writeFile(join(dir, "cuda_logits.f32"), new Uint8Array(logits.buffer));
}

/** The CUDA backend's attention kernels: tensor cores (head_dim 64/128) or the CUDA-core fallback. */
type Attention = "tensor" | "simple";
const ATTENTION_ENV = "MEDITRON_CUDA_ATTENTION";

/** Runs `fn` with the environment variables set (undefined: unset), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const prev = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) x === undefined ? Deno.env.delete(k) : Deno.env.set(k, x);
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(prev);
  }
}

/** Runs `fn` with MEDITRON_CUDA_ATTENTION set for `mode` (the CUDA backend reads it on every attention call). */
function withAttention<T>(mode: Attention, fn: () => Promise<T>): Promise<T> {
  return withEnv({ [ATTENTION_ENV]: mode === "simple" ? "simple" : undefined }, fn);
}

/**
 * The CUDA emulator's adversarial schedule (read at every launch): blocks and threads in reverse order, cp.async
 * landing at once instead of at its wait. The emulated check runs the packed rows with it, the rest without.
 */
const EMULATOR_ADVERSARIAL = {
  MEDITRON_CUDA_EMULATE_ORDER: "reverse",
  MEDITRON_CUDA_EMULATE_CPASYNC: "eager",
};

/**
 * `emulated`: the CUDA backend on the CUDA emulator (a library from `deno task build --cuda-emulator`, whose
 * kernels run on one CPU thread): the same checks on narrower models and shorter rows (T 72: still not a
 * multiple of the kernels' 64-row tiles, and two of them).
 */
async function runCheck(out: string, dry: boolean, smallOnly: boolean, emulated = false): Promise<boolean> {
  const dev: Device = dry ? "cpu" : "cuda";
  const checks: Check[] = [];
  // GQA, head_dim 32 (CUDA-core attention), padded vocabulary
  const small = emulated ? dims(128, 2, 4, 2, 344, 1000, 128) : dims(256, 2, 8, 4, 688, 1000, 256);
  // head_dim 64, GQA 4:1 and head_dim 128, GQA 2:1 (tensor-core attention)
  const hd64 = emulated ? dims(256, 2, 4, 1, 688, 1000, 128) : dims(512, 2, 8, 2, 1376, 1000, 256);
  const hd128 = emulated ? dims(256, 2, 2, 1, 688, 1000, 128) : dims(512, 2, 4, 2, 1376, 1000, 256);
  const llama = dims(1024, 2, 8, 8, 2816, 32000, 512); // head_dim 128 as Llama-2, the real vocabulary
  const T = emulated ? 72 : 200, Tsmall = emulated ? 72 : 128;
  await compareBackends("small (hd 32, GQA)", small, 2, Tsmall, dev, checks, join(dirOf(out), "hf"));
  // T = 200 is not a multiple of the kernels' 64-row tiles. Both attention paths against the CPU (on the CPU
  // backend the variable changes nothing: one run).
  const modes: Attention[] = dry ? ["tensor"] : ["tensor", "simple"];
  for (const [name, d] of [["hd 64, GQA 4:1", hd64], ["hd 128, GQA 2:1", hd128]] as const) {
    for (const mode of modes) {
      await withAttention(
        mode,
        () => compareBackends(`${name}, T ${T}, ${mode} attention`, d, 2, T, dev, checks),
      );
    }
  }
  // Packed rows (segment ids: masks and RoPE positions restart per segment) through both attention paths; on
  // the emulator, in its adversarial schedule.
  const schedule = emulated ? EMULATOR_ADVERSARIAL : {};
  for (const [name, d] of [["hd 64", hd64], ["hd 128", hd128]] as const) {
    for (const mode of modes) {
      const label = `${name} packed, T ${T}, ${mode} attention${
        emulated ? " (reverse order, eager cp.async)" : ""
      }`;
      await withEnv(schedule, () =>
        withAttention(
          mode,
          () => compareBackends(label, d, 2, T, dev, checks, undefined, packedIds(2, T)),
        ));
    }
  }
  await compareBackends(
    "small packed (hd 32)",
    small,
    2,
    Tsmall,
    dev,
    checks,
    undefined,
    packedIds(2, Tsmall),
  );
  if (!dry && !smallOnly && !emulated) {
    await compareBackends("llama-like (hd 128, V 32000)", llama, 2, 256, dev, checks);
  }
  await checkDecode("small", small, dev, checks);
  await checkDecode("hd 128", hd128, dev, checks);
  for (const c of checks) console.log(`${c.ok ? "PASS" : "FAIL"} ${c.name}: ${c.detail}`);
  await Deno.writeTextFile(out, JSON.stringify({ checks }, null, 1));
  return checks.every((c) => c.ok);
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

/** Llama-2-7B layer shapes. */
function llama7b(L: number, maxSeq: number, dry: boolean): ModelDims {
  return dry ? dims(128, L, 4, 4, 344, 1000, maxSeq) : dims(4096, L, 32, 32, 11008, 32000, maxSeq);
}

const isOom = (e: unknown) => e instanceof MeditronError && /does not fit|out of memory/.test(e.message);

async function runTrain(
  out: string,
  dry: boolean,
  opts: { layers: number; micro: number; steps: number; accum: number },
) {
  const dev: Device = dry ? "cpu" : "cuda";
  const T = dry ? 64 : 2048;
  // Start from the requested size and shrink until a step fits: stored activations (as PyTorch keeps them),
  // then selective recompute, then a smaller micro-batch, then fewer layers.
  let L = opts.layers, B = opts.micro, result: Record<string, unknown> | null = null;
  const tried: string[] = [];
  while (!result && L >= 1) {
    for (const recompute of [false, true]) {
      let m: NativeModel | null = null;
      try {
        m = await create(llama7b(L, T, dry), dev, recompute);
        for (B = opts.micro; B >= 1 && !result; B = Math.floor(B / 2)) {
          try {
            result = { ...(await timeTrain(m, L, B, T, opts.steps, dry)), recompute };
            // The same model with gradient accumulation, as pretraining runs (Meditron: 1024 rows per step).
            if (opts.accum > 1) result.accumulated = await timeTrain(m, L, B, T, opts.steps, dry, opts.accum);
          } catch (e) {
            if (!isOom(e)) throw e;
            tried.push(`L ${L} B ${B} recompute ${recompute}: ${(e as Error).message.slice(0, 160)}`);
          }
          if (!result && !recompute) break; // without recompute, only the requested micro-batch
        }
      } catch (e) {
        if (!isOom(e)) throw e;
        tried.push(`L ${L}: ${(e as Error).message.slice(0, 160)}`);
      } finally {
        m?.dispose();
      }
      if (result) break;
    }
    if (!result) L = Math.floor(L * 3 / 4);
  }
  if (!result) throw new Error(`no configuration fits: ${tried.join("; ")}`);
  result.tried = tried;
  console.log(JSON.stringify(result));
  await Deno.writeTextFile(out, JSON.stringify(result, null, 1));
}

/** Tokens/s of a step of `nMicro` micro-batches of [B, T] (gradients accumulated, then one AdamW update). */
async function timeTrain(
  m: NativeModel,
  L: number,
  B: number,
  T: number,
  steps: number,
  dry: boolean,
  nMicro = 1,
) {
  const V = m.dims.vocabSize, n = nMicro * B * T;
  const batch = {
    tokens: ids(n, V, 3),
    targets: ids(n, V, 4),
    lossMask: new Float32Array(n).fill(1),
    nMicro,
    batch: B,
    seq: T,
  };
  await m.trainStep(batch); // warm-up: allocation, cuBLAS heuristics
  const t0 = performance.now();
  let loss = 0;
  for (let s = 0; s < steps; s++) loss = (await m.trainStep(batch)).loss;
  const sec = (performance.now() - t0) / 1000 / steps;
  const N = m.numParams, d = m.dims.dim;
  const flopsPerToken = 6 * N + 6 * L * d * T; // issue #8's MFU numerator (attention counted as in PaLM)
  return {
    layers: L,
    micro_batch: B,
    micro_batches: nMicro,
    seq: T,
    params: N,
    step_s: sec,
    tokens_per_s: n / sec,
    model_tflops: (flopsPerToken * n) / sec / 1e12,
    loss,
    dry,
  };
}

async function runDecode(out: string, dry: boolean, opts: { layers: number }) {
  const dev: Device = dry ? "cpu" : "cuda";
  const prompt = dry ? 16 : 128, steps = dry ? 8 : 64;
  const warm = 4; // untimed decode steps first (allocator, cuBLAS heuristics), as torch_peer.py does
  using m = await create(llama7b(opts.layers, prompt + warm + steps, dry), dev);
  const V = m.dims.vocabSize;
  const res: Record<string, unknown> = { layers: opts.layers, prompt, steps, dry };
  for (const batch of [1, 64]) {
    using kv = KvCache.create(m, batch, prompt + warm + steps);
    const seq: number[] = [], tok: number[] = [];
    const p = ids(batch * prompt, V, 5);
    for (let b = 0; b < batch; b++) for (let i = 0; i < prompt; i++) seq.push(b), tok.push(p[b * prompt + i]);
    const want = seq.map((_, i) => (i + 1) % prompt === 0);
    let logits = await kv.decode(seq, tok, want);
    const rows = Array.from({ length: batch }, (_, b) => b);
    const step = async () => {
      logits = await kv.decode(rows, rows.map((b) => argmax(logits, b * V, V)));
    };
    for (let s = 0; s < warm; s++) await step();
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await step();
    const sec = (performance.now() - t0) / 1000;
    res[`batch${batch}_tokens_per_s`] = (batch * steps) / sec;
  }
  console.log(JSON.stringify(res));
  await Deno.writeTextFile(out, JSON.stringify(res, null, 1));
}

/** `deno task bench gpu --help` (bench/main.ts prints it too). */
export const HELP = `Usage: deno task bench gpu <check|train|decode> [options]

The CUDA backend on a GPU machine; bench/gpu/run.sh runs all three with the PyTorch peer and prints the table.
  check    CUDA vs the CPU backend on the same weights and batch (loss within 1e-2 relative, gradient cosine
           > 0.999), recompute, KV-cache decode vs full recompute, packed rows; writes the HF weights for
           bench/gpu/hf_check.py (transformers' LlamaForCausalLM)
  train    tokens/s and MFU of a training step on Llama-2-7B-shaped layers (d 4096, 32 heads, ffn 11008,
           seq 2048)
  decode   KV-cache decode tokens/s at batch 1 and 64 on the same layers

Options:
  --out FILE      where the JSON result goes (default gpu-<what>.json)
  --dry-run       the same code on the CPU backend with tiny shapes (checks the script without a GPU)
  --small-only    check: the small shapes only
  --emulated      check: narrower models and shorter rows, for a library built with
                  deno task build --cuda-emulator (the CUDA backend on the CPU; MEDITRON_LIB)
  --layers N      train/decode: layers (default 16 train, 8 decode; 2 with --dry-run)
  --micro N       train: micro-batch (default 4; 2 with --dry-run)
  --steps N       train: timed steps (default 5; 2 with --dry-run)
  --accum K       train: also time steps of K micro-batches with gradient accumulation (default 1: not)
  -h, --help      this help`;

/** Entry point for bench/main.ts and bench/gpu/run.sh. */
export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      "dry-run": { type: "boolean" },
      "small-only": { type: "boolean" },
      emulated: { type: "boolean" },
      layers: { type: "string" },
      micro: { type: "string" },
      steps: { type: "string" },
      accum: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const what = positionals[0];
  const dry = values["dry-run"] ?? false;
  const out = values.out ?? `gpu-${what}.json`;
  if (what === "check") {
    if (!(await runCheck(out, dry, values["small-only"] ?? false, values.emulated ?? false))) {
      console.error("gpu check: FAILED");
      Deno.exitCode = 1;
    }
  } else if (what === "train") {
    await runTrain(out, dry, {
      layers: Number(values.layers ?? (dry ? 2 : 16)),
      micro: Number(values.micro ?? (dry ? 2 : 4)),
      steps: Number(values.steps ?? (dry ? 2 : 5)),
      accum: Number(values.accum ?? 1),
    });
  } else if (what === "decode") {
    await runDecode(out, dry, { layers: Number(values.layers ?? (dry ? 2 : 8)) });
  } else {
    throw new Error("usage: deno task bench gpu <check|train|decode> [options] (--help lists them)");
  }
}

if (import.meta.main) await main(Deno.args);
