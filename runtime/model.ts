/**
 * The native Llama-2 model handle: create, train steps, logits, and parameter / optimizer-state access by
 * Hugging Face name.
 *
 * @module
 */
import {
  type ModelDims,
  type OptimSettings,
  packModelConfig,
  packOptimConfig,
  packTopology,
  STEP_RESULT_SIZE,
  TensorKind,
  type TensorKindName,
  type Topology,
} from "./ffi.ts";
import { check, checkModel, loaded, native } from "./library.ts";
import { checkSegmentIds } from "./segments.ts";

/** Result of one optimizer step. */
export interface StepResult {
  /** Mean loss over the unmasked tokens of the global batch. */
  loss: number;
  /** Global gradient L2 norm before clipping. */
  gradNorm: number;
  /** Learning rate used by this step. */
  lr: number;
  /** Σ loss mask over the global batch. */
  nTokens: number;
  /** The gradient norm was not finite: no update was made and the step was not counted. */
  skipped: boolean;
}

/** Name, shape and element count of a parameter tensor (this rank's shard), and where it sits in the full tensor. */
export interface ParamMeta {
  /** Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape of this rank's shard, e.g. `[dim / tp, dim]`. */
  shape: number[];
  /** Number of elements of the shard. */
  size: number;
  /** Shape of the full tensor. */
  fullShape: number[];
  /** Dimension the tensor is split along over TP (−1: replicated). */
  splitDim: number;
  /** First index along `splitDim` covered by this shard. */
  sliceStart: number;
}

/** Where this rank sits in the parallel grid. */
export interface RankInfo extends Required<Topology> {
  /** Tensor-parallel rank. */
  tpRank: number;
  /** Pipeline stage. */
  ppRank: number;
  /** Data-parallel rank. */
  dpRank: number;
  /** First layer of this stage. */
  firstLayer: number;
  /** Layers on this stage. */
  numLayers: number;
  /** World rank. */
  worldRank: number;
  /**
   * How the TP, DP and PP groups communicate: "host" (MPI on host buffers, the CPU backend), "nccl" (device
   * buffers), or "staged" (device buffers copied through host memory and MPI: ranks of the job share a GPU,
   * which NCCL refuses; slower).
   */
  comm: "host" | "nccl" | "staged";
}

/** Initialisation of a new model. */
export interface InitOptions {
  /** Seed of the counter-based initialiser (values depend only on seed, tensor name and element index). */
  seed: number;
  /** Std of the normal init of matrices (o/down use std/√(2·layers)); norms start at 1. */
  initStd: number;
}

/** A training batch: `nMicro` micro-batches of `[batch, seq]`, micro-batch-major. */
export interface TrainBatch {
  /** Input ids, `nMicro·batch·seq`. */
  tokens: Int32Array;
  /** Next-token targets, same size. */
  targets: Int32Array;
  /** Per-token loss weights (0 = ignore), same size. */
  lossMask: Float32Array;
  /**
   * Packed rows: the example each token belongs to, same size, non-decreasing along each row (see
   * `runtime/segments.ts`). Absent: one sequence per row.
   */
  segmentIds?: Int32Array;
  /** Micro-batches accumulated into one step. */
  nMicro: number;
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
}

const registry = new FinalizationRegistry<bigint>((addr) => {
  // Safety net for handles that were never disposed; explicit dispose() unregisters.
  try {
    loaded().mt_model_free(Deno.UnsafePointer.create(addr));
  } catch { /* library already closed */ }
});

const enc = new TextEncoder();

/** Views a typed array as the ArrayBuffer-backed buffer FFI expects (shared memory is not accepted). */
function buf<T extends Int32Array | Float32Array>(a: T): T & { buffer: ArrayBuffer } {
  if (!(a.buffer instanceof ArrayBuffer)) {
    throw new Error("typed arrays over SharedArrayBuffer cannot cross FFI");
  }
  return a as T & { buffer: ArrayBuffer };
}
function cstr(s: string): Uint8Array<ArrayBuffer> {
  return enc.encode(s + "\0");
}
/** Checked segment ids of `rows` rows of `seq` tokens, or null (FFI's "no segments"). */
function segs(ids: Int32Array | undefined, rows: number, seq: number): Int32Array | null {
  if (ids === undefined) return null;
  checkSegmentIds("segmentIds", ids, rows, seq);
  return buf(ids);
}

/**
 * A Llama-2 model living in libmeditron (CPU fp32).
 *
 * @example
 * ```ts
 * import { NativeModel } from "./model.ts";
 * using model = await NativeModel.create(
 *   { dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 128, vocabSize: 256, maxSeq: 32, normEps: 1e-5, ropeTheta: 10000 },
 *   { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 100, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 },
 *   { seed: 1, initStd: 0.02 },
 * );
 * const tokens = new Int32Array(2 * 8).fill(5);
 * const r = await model.trainStep({ tokens, targets: tokens, lossMask: new Float32Array(16).fill(1), nMicro: 1, batch: 2, seq: 8 });
 * console.log(r.loss);
 * ```
 */
export class NativeModel implements Disposable {
  #handle: Deno.PointerValue;
  #params: ParamMeta[];
  #index: Map<string, ParamMeta>;
  /** The architecture this model was created with. */
  readonly dims: ModelDims;

  private constructor(handle: Deno.PointerValue, dims: ModelDims) {
    this.#handle = handle;
    this.dims = dims;
    this.#params = this.#listParams();
    this.#index = new Map(this.#params.map((p) => [p.name, p]));
    registry.register(this, Deno.UnsafePointer.value(handle) as bigint, this);
  }

  /** Creates a freshly initialised model. Throws {@linkcode MeditronError} on an invalid config. */
  static async create(
    dims: ModelDims,
    optim: OptimSettings,
    init: InitOptions,
    topology?: Topology,
  ): Promise<NativeModel> {
    const lib = await native();
    const out = new BigUint64Array(1);
    // Blocking: no handle exists yet to carry an error message back from a worker thread.
    check(
      lib.mt_model_create(
        packModelConfig(dims, BigInt(init.seed), init.initStd),
        packOptimConfig(optim),
        topology ? packTopology(topology) : null,
        out,
      ),
    );
    return new NativeModel(Deno.UnsafePointer.create(out[0]), dims);
  }

  get #h(): Deno.PointerValue {
    if (this.#handle === null) throw new Error("NativeModel was disposed");
    return this.#handle;
  }

  /** The native handle (for other runtime/ wrappers such as the KV cache). */
  get handle(): Deno.PointerValue {
    return this.#h;
  }

  #listParams(): ParamMeta[] {
    const lib = loaded();
    const count = new Int32Array(1);
    checkModel(lib.mt_model_param_count(this.#h, count), this.#h);
    const name = new Uint8Array(256), shape = new BigInt64Array(4), ndim = new Int32Array(1);
    const full = new BigInt64Array(4), fullDims = new Int32Array(1), split = new Int32Array(1);
    const start = new BigInt64Array(1);
    const out: ParamMeta[] = [];
    for (let i = 0; i < count[0]; i++) {
      checkModel(lib.mt_model_param_info(this.#h, i, name, BigInt(name.length), shape, ndim), this.#h);
      checkModel(lib.mt_model_param_slice(this.#h, i, full, fullDims, split, start), this.#h);
      const dims = Array.from(shape.subarray(0, ndim[0]), Number);
      out.push({
        name: new TextDecoder().decode(name.subarray(0, name.indexOf(0))),
        shape: dims,
        size: dims.reduce((a, b) => a * b, 1),
        fullShape: Array.from(full.subarray(0, fullDims[0]), Number),
        splitDim: split[0],
        sliceStart: Number(start[0]),
      });
    }
    return out;
  }

  /** This rank's place in the parallel grid. */
  get rank(): RankInfo {
    const v = new Int32Array(13);
    checkModel(loaded().mt_model_topology(this.#h, v), this.#h);
    return {
      tp: v[0],
      pp: v[1],
      dp: v[2],
      tpRank: v[3],
      ppRank: v[4],
      dpRank: v[5],
      firstLayer: v[6],
      numLayers: v[7],
      zero1: v[8] === 1,
      worldRank: v[9],
      device: v[10] === 1 ? "cuda" : "cpu",
      recompute: v[11] === 1 ? "selective" : "none",
      comm: (["host", "nccl", "staged"] as const)[v[12]],
    };
  }

  /**
   * Communication counters since the last reset: bytes this rank sent over TP, DP and PP, seconds blocked
   * receiving pipeline messages, and bytes of world-wide reductions.
   */
  commStats(
    reset = false,
  ): { tpBytes: number; dpBytes: number; ppBytes: number; ppWaitS: number; worldBytes: number } {
    const v = new Float64Array(5);
    checkModel(loaded().mt_model_comm_stats(this.#h, v, reset ? 1 : 0), this.#h);
    return { tpBytes: v[0], dpBytes: v[1], ppBytes: v[2], ppWaitS: v[3], worldBytes: v[4] };
  }

  /** Flat optimizer state of this rank: total floats, and this rank's chunk offset and length (ZeRO-1). */
  get optimChunk(): { flatSize: number; offset: number; length: number } {
    const v = new BigInt64Array(3);
    checkModel(loaded().mt_model_optim_chunk_info(this.#h, v), this.#h);
    return { flatSize: Number(v[0]), offset: Number(v[1]), length: Number(v[2]) };
  }

  /** Reads this rank's chunk of Adam's m or v as one flat vector. */
  readOptimChunk(kind: "adamM" | "adamV"): Float32Array<ArrayBuffer> {
    const dst = new Float32Array(this.optimChunk.length);
    checkModel(
      loaded().mt_model_optim_chunk_read(this.#h, TensorKind[kind], dst, BigInt(dst.length)),
      this.#h,
    );
    return dst;
  }

  /** Overwrites this rank's chunk of Adam's m or v. */
  writeOptimChunk(kind: "adamM" | "adamV", data: Float32Array): void {
    checkModel(
      loaded().mt_model_optim_chunk_write(this.#h, TensorKind[kind], buf(data), BigInt(data.length)),
      this.#h,
    );
  }

  /** Every parameter tensor in Hugging Face state-dict order. */
  params(): readonly ParamMeta[] {
    return this.#params;
  }

  /** Total number of parameters. */
  get numParams(): number {
    return this.#params.reduce((a, p) => a + p.size, 0);
  }

  #meta(name: string): ParamMeta {
    const m = this.#index.get(name);
    if (!m) throw new Error(`unknown parameter '${name}'`);
    return m;
  }

  /** Copies a tensor (`param`, `grad`, `adamM`, `adamV`) out of the model. */
  read(name: string, kind: TensorKindName = "param"): Float32Array<ArrayBuffer> {
    const dst = new Float32Array(this.#meta(name).size);
    checkModel(
      loaded().mt_model_tensor_read(this.#h, cstr(name), TensorKind[kind], dst, BigInt(dst.length)),
      this.#h,
    );
    return dst;
  }

  /** Overwrites a tensor; the size must match exactly and values must be finite. */
  write(name: string, data: Float32Array, kind: TensorKindName = "param"): void {
    checkModel(
      loaded().mt_model_tensor_write(this.#h, cstr(name), TensorKind[kind], buf(data), BigInt(data.length)),
      this.#h,
    );
  }

  /** Optimizer steps taken (Adam's t). */
  get step(): number {
    const out = new BigInt64Array(1);
    checkModel(loaded().mt_model_get_step(this.#h, out), this.#h);
    return Number(out[0]);
  }

  /** Sets the optimizer step counter (resume). */
  set step(value: number) {
    checkModel(loaded().mt_model_set_step(this.#h, BigInt(value)), this.#h);
  }

  /** Replaces the optimizer hyperparameters. */
  setOptim(optim: OptimSettings): void {
    checkModel(loaded().mt_model_set_optim(this.#h, packOptimConfig(optim)), this.#h);
  }

  /** Zeroes all gradients. */
  zeroGrad(): void {
    checkModel(loaded().mt_model_zero_grad(this.#h), this.#h);
  }

  /**
   * Forward + backward of one micro-batch, accumulating gradients scaled by `1/denominator`; returns
   * Σ mask·CE of the micro-batch. `segmentIds`: packed rows (see {@linkcode TrainBatch.segmentIds}).
   */
  async forwardBackward(
    tokens: Int32Array,
    targets: Int32Array,
    lossMask: Float32Array,
    batch: number,
    seq: number,
    denominator: number,
    segmentIds?: Int32Array,
  ): Promise<number> {
    const out = new Float64Array(1);
    const h = this.#h;
    const seg = segs(segmentIds, tokens.length / seq, seq);
    checkModel(
      await loaded().mt_model_forward_backward(
        h,
        buf(tokens),
        buf(targets),
        buf(lossMask),
        seg,
        BigInt(tokens.length),
        batch,
        seq,
        denominator,
        out,
      ),
      h,
    );
    return out[0];
  }

  /** Clip + AdamW with the scheduled learning rate. */
  async optimizerStep(): Promise<{ gradNorm: number; lr: number; skipped: boolean }> {
    const out = new Float32Array(STEP_RESULT_SIZE / 4);
    const h = this.#h;
    checkModel(await loaded().mt_model_optimizer_step(h, out), h);
    return { gradNorm: out[1], lr: out[2], skipped: out[4] === 1 };
  }

  /** One full training step (zero grads, all micro-batches, clip, AdamW). */
  async trainStep(b: TrainBatch): Promise<StepResult> {
    const out = new Float32Array(STEP_RESULT_SIZE / 4);
    const h = this.#h;
    const seg = segs(b.segmentIds, b.tokens.length / b.seq, b.seq);
    checkModel(
      await loaded().mt_model_train_step(
        h,
        buf(b.tokens),
        buf(b.targets),
        buf(b.lossMask),
        seg,
        BigInt(b.tokens.length),
        b.nMicro,
        b.batch,
        b.seq,
        out,
      ),
      h,
    );
    return { loss: out[0], gradNorm: out[1], lr: out[2], nTokens: out[3], skipped: out[4] === 1 };
  }

  /** Σ mask·CE and Σ mask of one `[batch, seq]` batch (packed rows with `segmentIds`), without gradients. */
  async evalLoss(
    tokens: Int32Array,
    targets: Int32Array,
    lossMask: Float32Array,
    batch: number,
    seq: number,
    segmentIds?: Int32Array,
  ): Promise<{ lossSum: number; count: number }> {
    const sum = new Float64Array(1), count = new Float64Array(1);
    const h = this.#h;
    const seg = segs(segmentIds, tokens.length / seq, seq);
    checkModel(
      await loaded().mt_model_eval_loss(
        h,
        buf(tokens),
        buf(targets),
        buf(lossMask),
        seg,
        BigInt(tokens.length),
        batch,
        seq,
        sum,
        count,
      ),
      h,
    );
    return { lossSum: sum[0], count: count[0] };
  }

  /** Logits `[batch·seq, vocabSize]` of every position (packed rows with `segmentIds`). */
  async logits(
    tokens: Int32Array,
    batch: number,
    seq: number,
    segmentIds?: Int32Array,
  ): Promise<Float32Array<ArrayBuffer>> {
    const out = new Float32Array(tokens.length * this.dims.vocabSize);
    const h = this.#h;
    const seg = segs(segmentIds, tokens.length / seq, seq);
    checkModel(
      await loaded().mt_model_logits(
        h,
        buf(tokens),
        seg,
        BigInt(tokens.length),
        batch,
        seq,
        out,
        BigInt(out.length),
      ),
      h,
    );
    return out;
  }

  /** Frees the native model (idempotent). */
  dispose(): void {
    if (this.#handle === null) return;
    registry.unregister(this);
    check(loaded().mt_model_free(this.#handle));
    this.#handle = null;
  }

  /** `using` support. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Learning rate at optimizer step `step` (1-based) — the same function the native optimizer uses.
 *
 * @example
 * ```ts
 * import { lrAt } from "./model.ts";
 * const lr = await lrAt({ lr: 3e-4, minLr: 3e-5, warmupSteps: 10, decaySteps: 100, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1 }, 10);
 * console.log(lr); // 3e-4 (end of warmup)
 * ```
 */
export async function lrAt(optim: OptimSettings, step: number): Promise<number> {
  const out = new Float32Array(1);
  check((await native()).mt_lr_at(packOptimConfig(optim), BigInt(step), out));
  return out[0];
}
