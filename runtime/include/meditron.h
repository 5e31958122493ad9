/*
 * meditron.h — the C ABI of libmeditron, the native runtime of the Meditron toolkit.
 *
 * Read this file as the table of contents of the runtime. Every symbol is prefixed `mt_`, every type is a
 * plain C type, and every fallible call returns an `int` status: MT_OK (0) on success, otherwise an error
 * code whose human-readable message `mt_last_error()` returns (thread-local, valid until the next call on
 * the same thread). C++ exceptions never cross this boundary; invalid handles, shapes and sizes are
 * reported, never a crash.
 *
 * Threading: every entry point is thread-safe with respect to *different* handles; a single handle must be
 * used by one call at a time (the TS binding guarantees this).
 *
 * Layout conventions: tensors are row-major fp32 host buffers. Parameter names and shapes are those of
 * Hugging Face `LlamaForCausalLM` (`model.layers.0.self_attn.q_proj.weight` is [n_heads*head_dim, dim]).
 */
#ifndef MEDITRON_H
#define MEDITRON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__)
#pragma GCC visibility push(default) /* the library hides everything but this header */
#endif

#define MT_ABI_VERSION 6

/* ---- status codes ---------------------------------------------------------------------------------- */
enum {
  MT_OK = 0,
  MT_ERR_INVALID_ARGUMENT = 1, /* bad shape, size, value or pointer */
  MT_ERR_INVALID_HANDLE = 2,   /* null, freed or foreign handle */
  MT_ERR_OUT_OF_MEMORY = 3,
  MT_ERR_NOT_FOUND = 4, /* e.g. unknown parameter name */
  MT_ERR_INTERNAL = 5
};

/* ---- library ------------------------------------------------------------------------------------------ */
/** Message of the last failed call on this thread ("" when none). */
const char* mt_last_error(void);
/**
 * Message of the last failed call on `model` ("" when none). Calls that run on a worker thread (the TS
 * binding's nonblocking calls) read their error here, since mt_last_error is per thread.
 */
const char* mt_model_error(struct mt_model* model);
/** MT_ABI_VERSION the library was built with; the TS binding refuses a mismatch. */
int32_t mt_abi_version(void);
/** Build description: backend, BLAS, OpenMP threads, compiler flags. Static string. */
const char* mt_build_info(void);
/** Number of OpenMP threads used by kernels (and BLAS); n <= 0 restores the default. */
int mt_set_num_threads(int32_t n);
/**
 * Whether models can run on `device` (MT_DEVICE_*) here: MT_OK, or an error saying why not (a library built
 * without CUDA, or the CUDA runtime's reason for finding no device), the same that model creation would give.
 */
int mt_device_check(int32_t device);

/* ---- configuration --------------------------------------------------------------------------------------- */
/** Llama-2 architecture. `struct_size` must be sizeof(mt_model_config) (forward compatibility check). */
typedef struct mt_model_config {
  int32_t struct_size;
  int32_t dim;        /* model width d */
  int32_t n_layers;   /* transformer blocks L */
  int32_t n_heads;    /* query heads H, head_dim = dim / n_heads */
  int32_t n_kv_heads; /* key/value heads (GQA), divides n_heads */
  int32_t ffn_dim;    /* SwiGLU hidden size */
  int32_t vocab_size; /* true vocabulary; padded internally to a multiple of 128 */
  int32_t max_seq;    /* longest sequence a call may pass */
  float norm_eps;     /* RMSNorm epsilon (1e-5 for Llama-2) */
  float rope_theta;   /* RoPE base (10000 for Llama-2) */
  uint64_t seed;      /* parameter initialisation seed */
  float init_std;     /* normal(0, init_std) for matrices; o/down use init_std / sqrt(2 L) */
} mt_model_config;

/** AdamW + schedule hyperparameters. `struct_size` must be sizeof(mt_optim_config). */
typedef struct mt_optim_config {
  int32_t struct_size;
  float lr;           /* peak learning rate */
  float min_lr;       /* floor reached at decay_steps */
  int32_t warmup_steps;
  int32_t decay_steps; /* step at which cosine decay reaches min_lr */
  float beta1;
  float beta2;
  float eps;
  float weight_decay; /* decoupled; not applied to 1-D parameters */
  float grad_clip;    /* global-norm clip; <= 0 disables */
} mt_optim_config;

/** Where a model runs (mt_topology.device). */
enum { MT_DEVICE_CPU = 0, MT_DEVICE_CUDA = 1 };

/**
 * Parallel layout (DESIGN.md §5): tp·pp·dp ranks, TP fastest, then DP, then PP
 * (rank = pp·D·T + dp·T + tp). `zero1` shards the AdamW state over DP (ZeRO-1).
 * `device`: MT_DEVICE_CPU (fp32, OpenBLAS) or MT_DEVICE_CUDA (bf16 with fp32 master weights, cuBLAS, NCCL;
 * a library built without CUDA, or a machine without a GPU, fails mt_model_create with a message saying so).
 * `recompute`: 1 = selective (CUDA: attention, norms and SwiGLU are recomputed in backward instead of stored).
 * `struct_size` must be sizeof(mt_topology).
 */
typedef struct mt_topology {
  int32_t struct_size;
  int32_t tp;
  int32_t pp;
  int32_t dp;
  int32_t zero1;
  int32_t device;
  int32_t recompute;
} mt_topology;

/** Result of one optimizer step. */
typedef struct mt_step_result {
  float loss;      /* mean over unmasked tokens of the whole global batch */
  float grad_norm; /* global L2 norm before clipping */
  float lr;        /* learning rate used for this step */
  float n_tokens;  /* sum of the loss mask over the global batch */
  float skipped;   /* 1 when the gradient norm was not finite: no update was made, the step is not counted */
} mt_step_result;

/**
 * Learning rate at optimizer step `step` (1-based: the first update is step 1).
 * Linear warmup from 0: lr·step/warmup for step <= warmup; cosine from lr to min_lr over
 * (warmup, decay_steps]; min_lr after. step 0 gives 0.
 */
int mt_lr_at(const mt_optim_config* cfg, int64_t step, float* out_lr);

/* ---- distributed ------------------------------------------------------------------------------------------ */
/**
 * Initialises MPI when this process is one rank of an MPI launch (OMPI_COMM_WORLD_SIZE, PMI_SIZE, …), after
 * re-opening libmpi with RTLD_GLOBAL; idempotent. Gives the world rank and size (0 and 1 outside a launch).
 */
int mt_dist_init(int32_t* out_rank, int32_t* out_size);
/** 1 when the library was built with MPI, else 0. */
int32_t mt_dist_have_mpi(void);
/** Barrier over the world (no-op outside a launch). */
int mt_dist_barrier(void);
/**
 * A barrier that also agrees on success: *all_ok = 1 when every rank passed ok != 0, else 0 (on every rank).
 * Lets ranks leave a multi-rank operation together when one of them failed, instead of the others waiting
 * at a barrier the failed rank never reaches.
 */
int mt_dist_all_ok(int32_t ok, int32_t* all_ok);
/** MPI_Finalize (no-op outside a launch). Call once before exit. */
int mt_dist_finalize(void);
/** Takes the whole job down (MPI_Abort) with `code`; never returns. */
void mt_dist_abort(int32_t code);

/* ---- model ------------------------------------------------------------------------------------------------ */
typedef struct mt_model mt_model;

/**
 * Creates this rank's part of a model with freshly initialised parameters (seeded; see
 * mt_model_config.init_std). `topology` may be null (one rank). With more than one rank, every rank of the job
 * calls this collectively.
 */
int mt_model_create(const mt_model_config* cfg, const mt_optim_config* optim, const mt_topology* topology,
                    mt_model** out);
/** Frees a model; null is a no-op. Returns MT_ERR_INVALID_HANDLE for a foreign pointer. */
int mt_model_free(mt_model* model);
/** Replaces the optimizer hyperparameters (e.g. after resume with a new schedule). */
int mt_model_set_optim(mt_model* model, const mt_optim_config* optim);

/** Number of parameter tensors. */
int mt_model_param_count(mt_model* model, int32_t* out_count);
/**
 * Name and shape of parameter `index`: name copied NUL-terminated into `name` (capacity `name_cap`),
 * shape into `shape[0..*ndim)` (capacity 4).
 */
int mt_model_param_info(mt_model* model, int32_t index, char* name, size_t name_cap, int64_t* shape,
                        int32_t* ndim);

/** How the TP, DP and PP groups of a model communicate (mt_model_topology's out[12]). */
enum { MT_COMM_HOST = 0, MT_COMM_NCCL = 1, MT_COMM_STAGED = 2 };
/**
 * Where this rank sits: out[0..13) = tp, pp, dp, tp_rank, pp_rank, dp_rank, first layer, layers on this
 * stage, zero1, world rank, device (MT_DEVICE_*), recompute, and the TP/DP/PP communication (MT_COMM_*: MPI on
 * host buffers for the CPU backend; NCCL on device buffers, or staged through host memory and MPI where ranks
 * of the job share a GPU).
 */
int mt_model_topology(mt_model* model, int32_t* out);
/**
 * The slice of the full tensor that parameter `index` covers on this rank: full_shape[0..*ndim), the split
 * dimension (−1: replicated over TP) and the first index along it.
 */
int mt_model_param_slice(mt_model* model, int32_t index, int64_t* full_shape, int32_t* ndim, int32_t* split_dim,
                         int64_t* slice_start);

/**
 * Communication counters since the last reset (for benchmarks): out[0..5) = bytes sent by this rank over
 * TP, DP, PP, seconds blocked receiving pipeline messages, and over the world group (loss/norm reductions).
 * All-reduces of ≥ 1024·p floats are a ring over MPI_Sendrecv (real bytes); smaller collectives are MPI's
 * own and counted at the ring volume. `reset` non-zero zeroes the counters after reading.
 */
int mt_model_comm_stats(mt_model* model, double* out, int32_t reset);

/** Which buffer of a parameter to read or write. */
enum { MT_TENSOR_PARAM = 0, MT_TENSOR_GRAD = 1, MT_TENSOR_ADAM_M = 2, MT_TENSOR_ADAM_V = 3 };
/**
 * Copies `n` floats of the named tensor (`kind` above) into `dst`; n must equal the tensor's size. Under
 * ZeRO-1 the Adam moments live in flat chunks: read them with mt_model_optim_chunk_read.
 */
int mt_model_tensor_read(mt_model* model, const char* name, int32_t kind, float* dst, size_t n);
/** Overwrites the named tensor from `src` (n floats). */
int mt_model_tensor_write(mt_model* model, const char* name, int32_t kind, const float* src, size_t n);

/**
 * The optimizer state of this rank as flat vectors over its parameter buffer: out[0..3) = flat size, this
 * rank's chunk offset and length (the whole buffer without ZeRO-1).
 */
int mt_model_optim_chunk_info(mt_model* model, int64_t* out);
/** Reads / writes this rank's chunk of Adam's m (kind MT_TENSOR_ADAM_M) or v (MT_TENSOR_ADAM_V). */
int mt_model_optim_chunk_read(mt_model* model, int32_t kind, float* dst, size_t n);
int mt_model_optim_chunk_write(mt_model* model, int32_t kind, const float* src, size_t n);

/** Number of optimizer steps taken (Adam's t); settable for resume. */
int mt_model_get_step(mt_model* model, int64_t* out_step);
int mt_model_set_step(mt_model* model, int64_t step);

/** Sets every gradient to zero. */
int mt_model_zero_grad(mt_model* model);
/*
 * Packed rows (`segment_ids` below): several examples share a row of `seq` tokens. segment_ids is int32 laid out
 * like `tokens`, non-decreasing along each row (MT_ERR_INVALID_ARGUMENT otherwise); a token attends only to
 * earlier tokens of its own segment, and RoPE positions restart at 0 where a segment starts, so a packed row
 * computes exactly what its examples would as separate rows. Null: one sequence per row (unchanged behaviour).
 */
/**
 * Forward + backward of one micro-batch, *accumulating* into the gradients.
 * tokens/targets: int32 [batch, seq]; loss_mask: float [batch, seq] (0 = ignore); segment_ids: optional (see
 * above); each of n = batch·seq elements. The loss contributed is Σ mask·CE / `loss_denominator` and so are the
 * gradients; pass the mask sum of the whole global batch so accumulation over micro-batches gives the
 * token-level mean. `out_loss_sum` receives Σ mask·CE of this micro-batch (undivided).
 */
int mt_model_forward_backward(mt_model* model, const int32_t* tokens, const int32_t* targets,
                              const float* loss_mask, const int32_t* segment_ids, size_t n, int32_t batch,
                              int32_t seq, float loss_denominator, double* out_loss_sum);
/**
 * Clips gradients to the global norm and applies one AdamW update with the scheduled lr of step t+1.
 * Writes grad_norm, lr and skipped into `out` (loss and n_tokens are left untouched). A non-finite global
 * norm (NaN/Inf loss or gradients) skips the update, as Megatron does: parameters, moments and the step
 * counter stay as they were.
 */
int mt_model_optimizer_step(mt_model* model, mt_step_result* out);
/**
 * One full training step: zero grads, forward+backward over `n_micro` micro-batches of [batch, seq]
 * (buffers, segment_ids included when given, hold n_micro·batch·seq elements, micro-batch-major), clip,
 * AdamW. Slow: call nonblocking.
 * Parallel: every rank calls it with its data-parallel slice (the same on all TP/PP ranks of a DP rank);
 * micro-batches run through the pipeline with the 1F1B schedule; gradients are summed over DP; the loss
 * and grad norm reported are global.
 */
int mt_model_train_step(mt_model* model, const int32_t* tokens, const int32_t* targets,
                        const float* loss_mask, const int32_t* segment_ids, size_t n, int32_t n_micro,
                        int32_t batch, int32_t seq, mt_step_result* out);
/** Loss only (no gradients): Σ mask·CE into out_loss_sum and Σ mask into out_count, summed over DP slices. */
int mt_model_eval_loss(mt_model* model, const int32_t* tokens, const int32_t* targets,
                       const float* loss_mask, const int32_t* segment_ids, size_t n, int32_t batch, int32_t seq,
                       double* out_loss_sum, double* out_count);
/** Logits of every position: out has n·vocab_size floats (true vocabulary, padding dropped). */
int mt_model_logits(mt_model* model, const int32_t* tokens, const int32_t* segment_ids, size_t n, int32_t batch,
                    int32_t seq, float* out, size_t out_n);

/* ---- KV cache and decoding (one rank: tp = pp = 1) ------------------------------------------------------- */
typedef struct mt_kv mt_kv;
/** A cache for up to `max_seqs` sequences of up to `max_len` tokens (≤ the model's max_seq) of `model`. */
int mt_kv_create(mt_model* model, int32_t max_seqs, int32_t max_len, mt_kv** out);
/** Frees a cache; null is a no-op. */
int mt_kv_free(mt_kv* kv);
/** Empties sequence slot `seq` (its slot can then take a new sequence: continuous batching). */
int mt_kv_reset(mt_kv* kv, int32_t seq);
/** Copies the first `length` cached tokens of `src` into `dst` (sharing a prompt's prefill). */
int mt_kv_copy(mt_kv* kv, int32_t src, int32_t dst, int32_t length);
/** Tokens cached for `seq`. */
int mt_kv_length(mt_kv* kv, int32_t seq, int32_t* out);
/**
 * Appends n rows (seq_ids[i], tokens[i]) — rows of one sequence consecutive and in order, each at its
 * sequence's next position — running them through the model with attention over the cache: a prefill is
 * many rows of one sequence, a batched decode step one row per sequence, of any lengths. Logits of the rows
 * with want_logits[i] != 0 (every row when want_logits is null) are written compactly in row order to
 * `logits` (logits_n = rows wanted × vocab_size). Slow: call nonblocking.
 */
int mt_model_decode(mt_model* model, mt_kv* kv, const int32_t* seq_ids, const int32_t* tokens,
                    const uint8_t* want_logits, size_t n, float* logits, size_t logits_n);

/* ---- op-level API (single layers on host buffers; for tests and notebooks) ------------------------------- */
/**
 * Causal GQA attention, flash-style (tiled, online softmax; never a T×T matrix).
 * q: [B, T, H, hd], k/v: [B, T, KVH, hd], out: [B, T, H, hd], lse: [B, H, T] (log-sum-exp per row).
 * segment_ids: optional int32 [B, T], non-decreasing along each row: query t attends to keys j <= t of its own
 * segment only (packed rows; key tiles wholly outside it are skipped). Null: plain causal attention.
 */
int mt_op_attention_forward(const float* q, const float* k, const float* v, const int32_t* segment_ids,
                            float* out, float* lse, int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t hd);
/** Backward of the above: given dout, fills dq, dk, dv (overwritten, not accumulated). */
int mt_op_attention_backward(const float* q, const float* k, const float* v, const int32_t* segment_ids,
                             const float* out, const float* lse, const float* dout, float* dq, float* dk,
                             float* dv, int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t hd);

/* ---- benchmarks ---------------------------------------------------------------------------------------- */
/** Times `iters` sgemm calls C[M,N] = A[M,K]·B[K,N] through the same BLAS the kernels use; GFLOP/s out. */
int mt_bench_sgemm(int32_t M, int32_t N, int32_t K, int32_t iters, double* out_gflops);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif /* MEDITRON_H */
