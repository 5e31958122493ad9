// kernels.cuh — the Llama-2 layers on an NVIDIA GPU (llm.c train_gpt2.cu style): bf16 activations and weights,
// fp32 residual stream, fp32 gradients of the residual stream and of every parameter, fp32 reductions.
// Same math as the CPU kernels (../kernels.hpp); each launcher documents it. Sizes: N = B·T rows, d width,
// H/KVH heads, hd head dim, F ffn width, V true vocabulary, Vl this rank's vocabulary rows from id v0.
// All launchers are asynchronous on `s` and check the launch.
#pragma once

#include "cuda/common.cuh"

namespace mt::cuda {

// ---- MEDITRON_CUDA_PROFILE=1: where the GPU time of training goes -----------------------------------------------
// Every launcher below (and every device communicator call) first records a CUDA event tagged with its kind of
// work on its stream; the time between two consecutive events belongs to the first one's kind. Idle marks the
// host synchronising (the interval after it is the GPU waiting for the host). profile_flush() adds the intervals
// up once the stream has synchronised; profile_report() prints ms per step and shares to stderr. Without the
// variable (read once) nothing is recorded.
enum class Work { Gemm, Attention, Norm, Elementwise, CrossEntropy, Embedding, Optimizer, Comm, Idle, Kinds };
void profile_mark(Work w, cudaStream_t s);
void profile_flush();
void profile_report(int rank, int steps);

// ---- GEMMs (cuBLAS, bf16 inputs, fp32 accumulation), HF layout W[out, in] ------------------------------------
// y[N, out] = x[N, in]·Wᵀ + beta·y   (y is bf16 or fp32: yt = CUDA_R_16BF | CUDA_R_32F)
void matmul_forward(cublasHandle_t h, void* y, cudaDataType yt, const bf16* x, const bf16* w, int N, int in,
                    int out, float beta);
// dx[N, in] = dy[N, out]·W + beta·dx
void matmul_backward_input(cublasHandle_t h, void* dx, cudaDataType dxt, const bf16* dy, const bf16* w, int N,
                           int in, int out, float beta);
// dW[out, in] += dyᵀ·x  (fp32 gradient accumulation)
void matmul_backward_weight(cublasHandle_t h, float* dw, const bf16* dy, const bf16* x, int N, int in, int out);

// ---- conversions and elementwise -------------------------------------------------------------------------------
// out[i] = bf16(in[i])
void cast_to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s);
// out[n, :width] = bf16(in[n, :width]) for rows `os` / `is` elements apart
void cast_rows_to_bf16(bf16* out, size_t os, const float* in, size_t is, int N, int width, cudaStream_t s);
// out = a + b (fp32)
void residual_add(float* out, const float* a, const float* b, size_t n, cudaStream_t s);
// out[r, :] = in[idx[r], :]  (r < rows)
void gather_rows(float* out, const float* in, const int32_t* idx, int rows, int d, cudaStream_t s);

// ---- embedding (vocab-parallel): out[n, :] = wte[tokens[n] − v0, :] when this rank holds the row, else 0 -------
void embedding_forward(float* out, const int32_t* tokens, const bf16* wte, int N, int d, int v0, int rows,
                       cudaStream_t s);
// dwte[tokens[n] − v0, :] += dout[n, :]  (fp32 atomics)
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int d, int v0, int rows,
                        cudaStream_t s);

// ---- RMSNorm: rstd[n] = 1/√(mean_i x[n,i]² + eps); out[n,i] = bf16(x[n,i]·rstd[n]·w[i]) ----------------------
void rmsnorm_forward(bf16* out, float* rstd, const float* x, const bf16* w, int N, int d, float eps, cudaStream_t s);
// dw[i] += Σ_n dout·x·rstd;  dx[n,i] (+)= rstd·(dout·w)[i] − rstd³/d · x[n,i] · Σ_j (dout·w·x)[n,j]
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const bf16* w, const float* rstd,
                      int N, int d, bool accumulate_dx, cudaStream_t s);

// ---- RoPE (HF rotate-half) on `nh` heads of rows `stride` apart; position of row n = pos ? pos[n] : n % T ----
//   x'[i] = x[i]·c − x[i+hd/2]·s,   x'[i+hd/2] = x[i+hd/2]·c + x[i]·s,  (c, s) = cos_sin[pos, i]
void rope_forward(bf16* x, const float* cos_sin, const int32_t* pos, int N, int T, int nh, int hd, size_t stride,
                  cudaStream_t s);
// The transpose rotation from fp32 gradients into bf16: dx[i] = dx'[i]·c + dx'[i+hd/2]·s,
// dx[i+hd/2] = dx'[i+hd/2]·c − dx'[i]·s.
void rope_backward(bf16* dx, size_t os, const float* dxr, size_t is, const float* cos_sin, int N, int T, int nh,
                   int hd, cudaStream_t s, const int32_t* pos = nullptr);

// ---- SwiGLU on gu[N, 2F] (g | u): out = silu(g) ∘ u --------------------------------------------------------------
void swiglu_forward(bf16* out, const bf16* gu, int N, int F, cudaStream_t s);
// dgu[:, :F] = dout·u·σ(g)·(1 + g·(1 − σ(g))),  dgu[:, F:] = dout·silu(g)
void swiglu_backward(bf16* dgu, const bf16* dout, const bf16* gu, int N, int F, cudaStream_t s);

// ---- vocab-parallel softmax cross-entropy over fp32 logits[rows, Vl] (columns ≥ V − v0 are padding, masked) -----
// pass 1: rowmax[r] = max over this rank's real columns (then all-reduce max over TP)
void ce_rowmax(float* rowmax, const float* logits, int rows, int Vl, int v0, int V, cudaStream_t s);
// pass 2: stats[r] = {Σ_j exp(logit − rowmax), logit of the target when this rank holds it else 0}
//         (then all-reduce sum over TP)
void ce_sums(float* stats, const float* logits, const float* rowmax, const int32_t* targets, int rows, int Vl,
             int v0, int V, cudaStream_t s);
// pass 3: loss_r = log Σexp + rowmax − target logit; *loss_sum += Σ_r mask_r·loss_r (fp64 atomics);
// when dlogits != null: dlogits[r, j] = bf16((softmax_j − [j = target])·mask_r / denom), 0 on padding.
void ce_finish(bf16* dlogits, double* loss_sum, const float* logits, const float* rowmax, const float* stats,
               const int32_t* targets, const float* mask, float denom, int rows, int Vl, int v0, int V,
               cudaStream_t s);

// ---- optimizer -------------------------------------------------------------------------------------------------
// *out += Σ g[i]²  (fp64 accumulation)
void sum_squares(double* out, const float* g, size_t n, cudaStream_t s);
// Decoupled AdamW on fp32 master weights with the clipping coefficient folded in (g = grad_scale·grad):
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·(m/bc1 / (√(v/bc2) + eps) + wd·p);  param = bf16(p)
void adamw(float* master, bf16* param, const float* grad, float* m, float* v, size_t n, float grad_scale,
           float lr, float beta1, float beta2, float bc1, float bc2, float eps, float wd, cudaStream_t s);

// ---- attention (attention.cu): causal GQA, flash-style (K/V tiles in shared memory, online softmax) -------------
// q [B,T,H,hd] rows `qs` apart, k/v [B,T,KVH,hd] rows `ks` apart, out [B,T,H,hd] rows `os` apart (bf16);
// lse [B,H,T] fp32.  out_t = Σ_{j≤t} softmax_j(q_t·k_j/√hd) v_j;  lse_t = log Σ_{j≤t} exp(q_t·k_j/√hd).
// Packed rows: `start` [B,T] (int32, device; null: one segment per row) is each token's segment start, non-
// decreasing along a row; the sums then run over start_t ≤ j ≤ t.
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                       int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s,
                       const int32_t* start = nullptr);
// With P = exp(S − lse), D_t = dout_t·out_t (scratch `D`, [B,H,T]):
//   dv_j = Σ_t P_tj dout_t;  dS_tj = P_tj (dout_t·v_j − D_t);  dq_t = Σ_j dS_tj k_j/√hd;  dk_j = Σ_t dS_tj q_t/√hd
// dq, dk, dv (fp32, rows `gs` apart) are overwritten. dq in one pass over query rows, dk/dv in one over key rows:
// no atomics, no T×T buffer.
void attention_backward(float* dq, float* dk, float* dv, size_t gs, float* D, const bf16* dout, const bf16* q,
                        const bf16* k, const bf16* v, const bf16* out, const float* lse, int B, int T, int H,
                        int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s,
                        const int32_t* start = nullptr);
// The tensor-core versions (attention_mma.cu, FlashAttention-2 with mma.sync bf16): same arguments and results;
// attention_forward/backward use them when attention_mma_supported (head_dim 64 or 128, rows and pointers 16-byte
// aligned, MEDITRON_CUDA_ATTENTION not "simple"). The backward's dq is a sum of fp32 atomics (order unspecified).
bool attention_mma_supported(int hd, const void* q, const void* k, const void* v, const void* o, size_t qs, size_t ks,
                             size_t os);
void attention_forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                           int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s,
                           const int32_t* start = nullptr);
void attention_backward_mma(float* dq, float* dk, float* dv, size_t gs, const float* D, const bf16* dout,
                            const bf16* q, const bf16* k, const bf16* v, const float* lse, int B, int T, int H,
                            int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s,
                            const int32_t* start = nullptr);
// Decoding against a KV cache kc/vc [max_seqs, max_len, KVH, hd] (bf16): row r (sequence seq[r], position
// pos[r]) attends to positions 0..pos[r] of its sequence. q rows `qs` apart; out [rows, H·hd].
void attention_cached(bf16* out, const bf16* q, size_t qs, const bf16* kc, const bf16* vc, const int32_t* seq,
                      const int32_t* pos, int rows, int H, int KVH, int hd, int max_len, cudaStream_t s);
// Stores row r's k, v (rows `qs` apart in qkv at offsets koff, voff) at (seq[r], pos[r]) of the cache.
void kv_store(bf16* kc, bf16* vc, const bf16* qkv, size_t qs, size_t koff, size_t voff, const int32_t* seq,
              const int32_t* pos, int rows, int kvd, int max_len, cudaStream_t s);

}  // namespace mt::cuda
