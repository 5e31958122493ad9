/**
 * The symbol table of libmeditron (runtime/include/meditron.h), typed for `Deno.dlopen`, and the packed layouts
 * of the C structs passed by pointer. This is the only file that spells out native signatures.
 *
 * @module
 */

/** Symbols of meditron.h. Calls that can take milliseconds or more are `nonblocking`. */
export const SYMBOLS = {
  mt_last_error: { parameters: [], result: "pointer" },
  mt_model_error: { parameters: ["pointer"], result: "pointer" },
  mt_abi_version: { parameters: [], result: "i32" },
  mt_build_info: { parameters: [], result: "pointer" },
  mt_set_num_threads: { parameters: ["i32"], result: "i32" },
  mt_device_check: { parameters: ["i32"], result: "i32" },
  mt_lr_at: { parameters: ["buffer", "i64", "buffer"], result: "i32" },
  mt_dist_init: { parameters: ["buffer", "buffer"], result: "i32" },
  mt_dist_have_mpi: { parameters: [], result: "i32" },
  mt_dist_barrier: { parameters: [], result: "i32", nonblocking: true },
  mt_dist_all_ok: { parameters: ["i32", "buffer"], result: "i32", nonblocking: true },
  mt_dist_finalize: { parameters: [], result: "i32" },
  mt_dist_abort: { parameters: ["i32"], result: "void" },
  mt_model_create: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  mt_model_topology: { parameters: ["pointer", "buffer"], result: "i32" },
  mt_model_param_slice: {
    parameters: ["pointer", "i32", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  mt_model_optim_chunk_info: { parameters: ["pointer", "buffer"], result: "i32" },
  mt_model_comm_stats: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  mt_model_optim_chunk_read: { parameters: ["pointer", "i32", "buffer", "usize"], result: "i32" },
  mt_model_optim_chunk_write: { parameters: ["pointer", "i32", "buffer", "usize"], result: "i32" },
  mt_model_free: { parameters: ["pointer"], result: "i32" },
  mt_model_set_optim: { parameters: ["pointer", "buffer"], result: "i32" },
  mt_model_param_count: { parameters: ["pointer", "buffer"], result: "i32" },
  mt_model_param_info: {
    parameters: ["pointer", "i32", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
  },
  mt_model_tensor_read: { parameters: ["pointer", "buffer", "i32", "buffer", "usize"], result: "i32" },
  mt_model_tensor_write: { parameters: ["pointer", "buffer", "i32", "buffer", "usize"], result: "i32" },
  mt_model_get_step: { parameters: ["pointer", "buffer"], result: "i32" },
  mt_model_set_step: { parameters: ["pointer", "i64"], result: "i32" },
  mt_model_zero_grad: { parameters: ["pointer"], result: "i32" },
  mt_model_forward_backward: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer", "usize", "i32", "i32", "f32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  mt_model_optimizer_step: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  mt_model_train_step: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "buffer", "usize", "i32", "i32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  mt_model_eval_loss: {
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "usize",
      "i32",
      "i32",
      "buffer",
      "buffer",
    ],
    result: "i32",
    nonblocking: true,
  },
  mt_model_logits: {
    parameters: ["pointer", "buffer", "buffer", "usize", "i32", "i32", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  mt_kv_create: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  mt_kv_free: { parameters: ["pointer"], result: "i32" },
  mt_kv_reset: { parameters: ["pointer", "i32"], result: "i32" },
  mt_kv_copy: { parameters: ["pointer", "i32", "i32", "i32"], result: "i32" },
  mt_kv_length: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  mt_model_decode: {
    parameters: ["pointer", "pointer", "buffer", "buffer", "buffer", "usize", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  mt_op_attention_forward: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  mt_op_attention_backward: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  mt_bench_sgemm: { parameters: ["i32", "i32", "i32", "i32", "buffer"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened library's functions. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** ABI version this binding speaks (MT_ABI_VERSION). */
export const ABI_VERSION = 6;

/** Tensor kinds of `mt_model_tensor_read/write`. */
export const TensorKind = { param: 0, grad: 1, adamM: 2, adamV: 3 } as const;
/** One of {@linkcode TensorKind}'s names. */
export type TensorKindName = keyof typeof TensorKind;

/** Llama-2 architecture, the fields of `mt_model_config`. */
export interface ModelDims {
  /** Model width. */
  dim: number;
  /** Transformer blocks. */
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (GQA). */
  nKvHeads: number;
  /** SwiGLU hidden width. */
  ffnDim: number;
  /** True vocabulary size. */
  vocabSize: number;
  /** Longest sequence. */
  maxSeq: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base. */
  ropeTheta: number;
}

/** AdamW and schedule hyperparameters, the fields of `mt_optim_config`. */
export interface OptimSettings {
  /** Peak learning rate. */
  lr: number;
  /** Learning rate floor reached at `decaySteps`. */
  minLr: number;
  /** Linear warmup steps from 0. */
  warmupSteps: number;
  /** Step at which the cosine reaches `minLr`. */
  decaySteps: number;
  /** Adam β1. */
  beta1: number;
  /** Adam β2. */
  beta2: number;
  /** Adam epsilon. */
  eps: number;
  /** Decoupled weight decay (not applied to 1-D tensors). */
  weightDecay: number;
  /** Global-norm gradient clip (≤ 0 disables). */
  gradClip: number;
}

/** Parallel layout, the fields of `mt_topology`: tp·pp·dp ranks (TP fastest, then DP, then PP). */
export interface Topology {
  /** Tensor-parallel size. */
  tp: number;
  /** Pipeline-parallel size. */
  pp: number;
  /** Data-parallel size. */
  dp: number;
  /** Shard the AdamW state over DP (ZeRO-1). */
  zero1?: boolean;
  /**
   * Where the model runs (default "cpu"): "cuda" needs a library built with `deno task build --cuda` and an
   * NVIDIA GPU (bf16 with fp32 master weights; otherwise creation throws a {@linkcode MeditronError} saying which).
   */
  device?: Device;
  /** Activation recomputation (default "none"): "selective" recomputes attention, norms and SwiGLU in backward. */
  recompute?: Recompute;
}

/** A model's device: the CPU backend (fp32) or the CUDA backend (bf16, cuBLAS, NCCL). */
export type Device = "cpu" | "cuda";
/** MT_DEVICE_* of a device (MT_DEVICE_CPU = 0, MT_DEVICE_CUDA = 1). */
export function deviceCode(d: Device = "cpu"): number {
  return d === "cuda" ? 1 : 0;
}
/** Activation recomputation policy. */
export type Recompute = "none" | "selective";

/** sizeof(mt_topology). */
export const TOPOLOGY_SIZE = 28;

/** Packs `mt_topology`. */
export function packTopology(t: Topology): Uint8Array<ArrayBuffer> {
  const device = deviceCode(t.device), recompute = t.recompute === "selective" ? 1 : 0;
  return new Uint8Array(
    Int32Array.from([TOPOLOGY_SIZE, t.tp, t.pp, t.dp, t.zero1 ? 1 : 0, device, recompute]).buffer,
  );
}

/** sizeof(mt_model_config) on LP64. */
export const MODEL_CONFIG_SIZE = 56;
/** sizeof(mt_optim_config). */
export const OPTIM_CONFIG_SIZE = 40;
/** sizeof(mt_step_result). */
export const STEP_RESULT_SIZE = 20;

/** Packs `mt_model_config`. */
export function packModelConfig(d: ModelDims, seed: bigint, initStd: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(MODEL_CONFIG_SIZE);
  const v = new DataView(buf.buffer);
  const ints = [MODEL_CONFIG_SIZE, d.dim, d.nLayers, d.nHeads, d.nKvHeads, d.ffnDim, d.vocabSize, d.maxSeq];
  ints.forEach((x, i) => v.setInt32(4 * i, x, true));
  v.setFloat32(32, d.normEps, true);
  v.setFloat32(36, d.ropeTheta, true);
  v.setBigUint64(40, BigInt.asUintN(64, seed), true);
  v.setFloat32(48, initStd, true);
  return buf;
}

/** Packs `mt_optim_config`. */
export function packOptimConfig(o: OptimSettings): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(OPTIM_CONFIG_SIZE);
  const v = new DataView(buf.buffer);
  v.setInt32(0, OPTIM_CONFIG_SIZE, true);
  v.setFloat32(4, o.lr, true);
  v.setFloat32(8, o.minLr, true);
  v.setInt32(12, o.warmupSteps, true);
  v.setInt32(16, o.decaySteps, true);
  v.setFloat32(20, o.beta1, true);
  v.setFloat32(24, o.beta2, true);
  v.setFloat32(28, o.eps, true);
  v.setFloat32(32, o.weightDecay, true);
  v.setFloat32(36, o.gradClip, true);
  return buf;
}
