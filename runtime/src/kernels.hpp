// kernels.hpp — the Llama-2 layers on the CPU, fp32, each a *_forward / *_backward pair (llm.c style).
// Sizes: B batch, T sequence, d model width, H query heads, KVH key/value heads, hd head dim, F ffn width,
// V true vocabulary, Vp padded vocabulary (row stride of the embedding/head), N = B·T rows.
// Backward functions ACCUMULATE into parameter gradients (dW += …) and, unless stated, OVERWRITE input
// gradients (dx = …).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mt {

struct Comm;

// ---- embedding: out[n, :] = wte[tokens[n], :] -------------------------------------------------------------
// Vocab-parallel: this rank holds rows [v0, v0 + rows) of the table; other tokens give zero rows (the model
// sums the ranks' outputs with the g operator).
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int d, int v0, int rows);
// dwte[tokens[n] − v0, :] += dout[n, :] for the tokens this rank holds
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int d, int v0, int rows);

// ---- RMSNorm: rstd[n] = 1/sqrt(mean_i x[n,i]^2 + eps); out[n,i] = x[n,i]·rstd[n]·w[i] -----------------------
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int d, float eps);
// dw[i] += Σ_n dout·x·rstd;  dx[n,i] (+)= rstd·(dout·w)[i] − rstd³/d · x[n,i] · Σ_j (dout·w·x)[n,j]
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int N, int d, bool accumulate_dx);

// ---- linear (no bias), HF layout W[out, in]: y[N, out] = x[N, in] · Wᵀ ----------------------------------------
void matmul_forward(float* y, const float* x, const float* w, int N, int in, int out);
// dx[N, in] (+)= dy · W;  dW[out, in] += dyᵀ · x
void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int N, int in,
                     int out, bool accumulate_dx);

// ---- RoPE, HF rotate-half, in place on x[B, T, nh, hd] (rows `stride` floats apart), position t in its sequence
// with c = cos(t·θ^(−2i/hd)), s = sin(…), i < hd/2:
//   x'[i] = x[i]·c − x[i+hd/2]·s,   x'[i+hd/2] = x[i+hd/2]·c + x[i]·s
// cos_sin: [max_seq, hd/2, 2] table. `pos` [B·T] (optional): explicit positions, e.g. restarting at 0 at each
// segment start of a packed row (segment_positions); null: t = row index within its sequence.
void rope_forward(float* x, const float* cos_sin, int B, int T, int nh, int hd, size_t stride,
                  const int32_t* pos = nullptr);
// the transpose rotation: dx[i] = dx'[i]·c + dx'[i+hd/2]·s,  dx[i+hd/2] = dx'[i+hd/2]·c − dx'[i]·s
void rope_backward(float* dx, const float* cos_sin, int B, int T, int nh, int hd, size_t stride,
                   const int32_t* pos = nullptr);
// RoPE of `rows` rows at explicit positions pos[r] (decoding with a KV cache).
void rope_forward_at(float* x, const float* cos_sin, const int32_t* pos, int rows, int nh, int hd, size_t stride);

// ---- causal GQA attention, flash-style: tiles of queries × keys, online softmax, no T×T matrix -------------
// q [B,T,H,hd], k/v [B,T,KVH,hd], out [B,T,H,hd]; query head h reads kv head h / (H/KVH).
// Row strides: q and dq rows are `qs` floats apart, k, v, dk, dv rows `ks`, out and dout rows `os` (the model
// reads q, k, v in place from its fused QKV projection).
// out[t] = Σ_{j≤t} softmax_j(q_t·k_j / √hd) v_j;  lse[b,h,t] = log Σ_{j≤t} exp(q_t·k_j / √hd)
// Packed rows: with segment ids seg [B,T] (non-decreasing along each row; null: one segment per row) the sums
// run over j ≤ t with seg[b,j] = seg[b,t] only — block-diagonal causal attention; key tiles left of a query
// tile's first segment are skipped, so a packed row costs Σ over its segments, not T².
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int B, int T,
                       int H, int KVH, int hd, size_t qs, size_t ks, size_t os, const int32_t* seg = nullptr);
// With P = exp(S − lse), D_t = Σ_i dout[t,i]·out[t,i]:
//   dv_j = Σ_t P_tj dout_t;  dS_tj = P_tj (dout_t·v_j − D_t);  dq_t = Σ_j dS_tj k_j/√hd;  dk_j = Σ_t dS_tj q_t/√hd
// dq, dk, dv are overwritten. `seg` as in attention_forward (P_tj = 0 across segments).
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int B, int T, int H, int KVH, int hd,
                        size_t qs, size_t ks, size_t os, const int32_t* seg = nullptr);
// Position of each token within its segment (seg [B,T] as above): pos[b,t] = t − (first t' of its segment).
void segment_positions(int32_t* pos, const int32_t* seg, int B, int T);

// ---- attention against a KV cache (decoding): row r of q (`qs` apart) is sequence seq[r] at position pos[r]
// and attends to that sequence's cached keys/values 0..pos[r] (which already hold this row's own k, v).
// kc, vc: [max_seqs, max_len, KVH, hd]; out: [rows, H, hd].
//   out[r, h] = Σ_{j ≤ pos[r]} softmax_j(q[r, h]·k[seq, j, g] / √hd) v[seq, j, g],  g = h / (H/KVH)
void attention_cached(float* out, const float* q, size_t qs, const float* kc, const float* vc, const int32_t* seq,
                      const int32_t* pos, int rows, int H, int KVH, int hd, int max_len);

// ---- SwiGLU on the fused gate|up projection gu[N, 2F] (row n: g = gu[n, :F], u = gu[n, F:]) ------------------
// out[N, F] = silu(g) ∘ u,  silu(g) = g·σ(g)
void swiglu_forward(float* out, const float* gu, int N, int F);
// dgu[n, :F] = dout·u·σ(g)·(1 + g·(1 − σ(g))),  dgu[n, F:] = dout·silu(g)
void swiglu_backward(float* dgu, const float* dout, const float* gu, int N, int F);

// ---- residual: x += y --------------------------------------------------------------------------------------
void residual_forward(float* x, const float* y, size_t n);

// ---- fused LM head + softmax cross-entropy with a loss mask, vocab-parallel, processed in row chunks -----------
// This rank holds head rows [v0, v0 + Vl) of the padded vocabulary; `tp` is its vocabulary group (a group of
// one without tensor parallelism). logits[n, :] = h[n, :] · Wᵀ; global ids ≥ V are masked out of the softmax.
// The row max, Σ exp and the target logit are reduced over `tp` (max, sum, sum), so
// loss_n = logsumexp_global(logits[n, :V]) − logits[n, target_n];  returns Σ_n mask_n · loss_n.
// When dh != null (training): dlogits = (softmax − onehot) · mask_n / denom;  dh = dlogits·W (overwritten; a
// partial sum over the vocabulary shards), dW += dlogitsᵀ·h. Memory: one chunk of rows × Vl logits at a time.
double lm_head_cross_entropy(Comm& tp, float* dh, float* dw, const float* h, const float* w, const int32_t* targets,
                             const float* mask, float denom, int N, int d, int V, int v0, int Vl);
// Plain logits for inference: out[n, :V] (padding dropped).
void lm_head_logits(float* out, const float* h, const float* w, int N, int d, int V, int Vp);

}  // namespace mt
