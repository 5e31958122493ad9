// kernels.cpp — CPU fp32 implementations of kernels.hpp. The math of each pair is stated in kernels.hpp;
// comments here note only layout and parallelisation. All reductions run in a fixed order so results are
// bit-identical across runs with the same thread count.
#include "kernels.hpp"

#include "comm.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace mt {

// ---- embedding ------------------------------------------------------------------------------------------------
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int d, int v0, int rows) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const int r = tokens[n] - v0;
    if (r >= 0 && r < rows) std::copy_n(wte + (size_t)r * d, d, out + (size_t)n * d);
    else std::fill_n(out + (size_t)n * d, d, 0.0f);
  }
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int d, int v0, int rows) {
  // Parallel over columns so that repeated tokens never race; rows are visited in order.
#pragma omp parallel for schedule(static)
  for (int i = 0; i < d; i++)
    for (int n = 0; n < N; n++) {
      const int r = tokens[n] - v0;
      if (r >= 0 && r < rows) dwte[(size_t)r * d + i] += dout[(size_t)n * d + i];
    }
}

// ---- RMSNorm ------------------------------------------------------------------------------------------------------
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int d, float eps) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* xn = x + (size_t)n * d;
    float* on = out + (size_t)n * d;
    double ss = 0;
    for (int i = 0; i < d; i++) ss += (double)xn[i] * xn[i];
    float r = (float)(1.0 / std::sqrt(ss / d + eps));
    rstd[n] = r;
    for (int i = 0; i < d; i++) on[i] = xn[i] * r * w[i];
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int N, int d, bool accumulate_dx) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* xn = x + (size_t)n * d;
    const float* gn = dout + (size_t)n * d;
    float* dxn = dx + (size_t)n * d;
    float r = rstd[n];
    double dot = 0;  // Σ_j dout·w·x
    for (int i = 0; i < d; i++) dot += (double)gn[i] * w[i] * xn[i];
    float c = (float)(dot * r * r * r / d);
    for (int i = 0; i < d; i++) {
      float v = r * gn[i] * w[i] - c * xn[i];
      dxn[i] = accumulate_dx ? dxn[i] + v : v;
    }
  }
  // dw: parallel over columns, rows summed in order (deterministic).
#pragma omp parallel for schedule(static)
  for (int i = 0; i < d; i++) {
    double acc = 0;
    for (int n = 0; n < N; n++) acc += (double)dout[(size_t)n * d + i] * x[(size_t)n * d + i] * rstd[n];
    dw[i] += (float)acc;
  }
}

// ---- linear ---------------------------------------------------------------------------------------------------------
// A few rows (decoding) go through sgemv: sgemm would pack the whole weight matrix for each call.
constexpr int GEMV_ROWS = 4;

void matmul_forward(float* y, const float* x, const float* w, int N, int in, int out) {
  if (N <= GEMV_ROWS) {
    for (int n = 0; n < N; n++)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x + (size_t)n * in, 1, 0.0f, y + (size_t)n * out, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int N, int in,
                     int out, bool accumulate_dx) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, w, in,
              accumulate_dx ? 1.0f : 0.0f, dx, in);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
}

// ---- RoPE --------------------------------------------------------------------------------------------------------------
// Row r (of B·T rows, `stride` floats apart) sits at position pos[r] when given, else r mod T.
static void rope_rotate(float* x, const float* cos_sin, int rows, int T, int nh, int hd, size_t stride, float sign,
                        const int32_t* pos) {
  const int half = hd / 2;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; r++) {
    const float* cs = cos_sin + (size_t)(pos ? pos[r] : r % T) * half * 2;
    for (int h = 0; h < nh; h++) {
      float* v = x + (size_t)r * stride + (size_t)h * hd;
      for (int i = 0; i < half; i++) {
        float c = cs[2 * i], s = sign * cs[2 * i + 1];
        float a = v[i], e = v[i + half];
        v[i] = a * c - e * s;
        v[i + half] = e * c + a * s;
      }
    }
  }
}

void rope_forward(float* x, const float* cos_sin, int B, int T, int nh, int hd, size_t stride, const int32_t* pos) {
  rope_rotate(x, cos_sin, B * T, T, nh, hd, stride, 1.0f, pos);
}

// The rotation is orthogonal: its transpose is the rotation by −angle.
void rope_backward(float* dx, const float* cos_sin, int B, int T, int nh, int hd, size_t stride, const int32_t* pos) {
  rope_rotate(dx, cos_sin, B * T, T, nh, hd, stride, -1.0f, pos);
}

void rope_forward_at(float* x, const float* cos_sin, const int32_t* pos, int rows, int nh, int hd, size_t stride) {
  rope_rotate(x, cos_sin, rows, 1, nh, hd, stride, 1.0f, pos);
}

// ---- attention ----------------------------------------------------------------------------------------------------------
// Tile sizes: a TQ×TK score tile and TQ×hd accumulators stay in L1/L2 per thread.
constexpr int TQ = 64;
constexpr int TK = 64;

void segment_positions(int32_t* pos, const int32_t* seg, int B, int T) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const size_t i = (size_t)b * T + t;
      pos[i] = t > 0 && seg[i] == seg[i - 1] ? pos[i - 1] + 1 : 0;
    }
}

// First key of each query's segment, lo[b·T + t] = t − pos (segment ids non-decreasing: a query attends to
// keys [lo, t]); empty without segment ids (lo = 0).
static std::vector<int32_t> segment_starts(const int32_t* seg, int B, int T) {
  std::vector<int32_t> lo;
  if (!seg) return lo;
  lo.resize((size_t)B * T);
  segment_positions(lo.data(), seg, B, T);
  for (size_t i = 0; i < lo.size(); i++) lo[i] = (int32_t)(i % T) - lo[i];
  return lo;
}

// exp(x) in fp32, vectorisable (no libm call): x = n·ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial
// (relative error < 2e-7), 2^n assembled in the exponent bits; x is clamped to [-87, 88] (0 and overflow
// edges of fp32). Softmax, attention and SwiGLU spend their non-GEMM time here.
static inline float fast_exp(float x) {
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  // round to nearest by the 1.5·2²³ trick (pure arithmetic, so the loops around it vectorise)
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * __builtin_bit_cast(float, ((int32_t)n + 127) << 23);
}

static inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// Tile products go through single-threaded BLAS calls (we are inside an OpenMP task; the OpenMP build of
// OpenBLAS does not nest threads). Operands are read in place with their row strides (qs, ks): no copies.
//   C[m, n] = alpha · A[m, k] · B[n, k]ᵀ + beta · C        (gemm_nt)
//   C[m, n] = alpha · A[m, k] · B[k, n]   + beta · C        (gemm_nn)
//   C[m, n] = alpha · A[k, m]ᵀ · B[k, n]  + beta · C        (gemm_tn)
static inline void gemm_nt(int m, int n, int k, float alpha, const float* A, size_t lda, const float* B,
                           size_t ldb, float beta, float* C, size_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
static inline void gemm_nn(int m, int n, int k, float alpha, const float* A, size_t lda, const float* B,
                           size_t ldb, float beta, float* C, size_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
static inline void gemm_tn(int m, int n, int k, float alpha, const float* A, size_t lda, const float* B,
                           size_t ldb, float beta, float* C, size_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int B, int T,
                       int H, int KVH, int hd, size_t qs, size_t ks, size_t os, const int32_t* seg) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KVH;
  const int n_qt = (T + TQ - 1) / TQ;
  const float NEG_INF = -std::numeric_limits<float>::infinity();
  const std::vector<int32_t> start = segment_starts(seg, B, T);
  auto lo = [&](int b, int i) { return seg ? (int)start[(size_t)b * T + i] : 0; };
#pragma omp parallel
  {
    std::vector<float> S(TQ * TK), m(TQ), l(TQ), acc((size_t)TQ * hd);
#pragma omp for collapse(3) schedule(dynamic)
    for (int b = 0; b < B; b++)
      for (int h = 0; h < H; h++)
        for (int qt = 0; qt < n_qt; qt++) {
          const int i0 = qt * TQ, iq = std::min(TQ, T - i0), g = h / group;
          const float* qb = q + (size_t)b * T * qs + (size_t)h * hd;
          const float* kb = k + (size_t)b * T * ks + (size_t)g * hd;
          const float* vb = v + (size_t)b * T * ks + (size_t)g * hd;
          std::fill(m.begin(), m.end(), NEG_INF);
          std::fill(l.begin(), l.end(), 0.0f);
          std::fill(acc.begin(), acc.end(), 0.0f);
          // key tiles from the first key of the tile's first segment up to its last query
          for (int j0 = lo(b, i0); j0 < i0 + iq; j0 += TK) {
            const int jk = std::min(TK, i0 + iq - j0);
            gemm_nt(iq, jk, hd, scale, qb + (size_t)i0 * qs, qs, kb + (size_t)j0 * ks, ks, 0.0f, S.data(), TK);
            for (int r = 0; r < iq; r++) {  // online softmax: P = exp(S − m_new), rescale what came before
              // keys [first, valid) of this tile: causal (j <= i) and in the query's segment (j >= lo)
              const int valid = std::max(0, std::min(jk, i0 + r - j0 + 1));
              const int first = std::min(valid, std::max(0, lo(b, i0 + r) - j0));
              float* Sr = &S[(size_t)r * TK];
              if (first == valid) {  // nothing of this row here: its state is unchanged
                std::fill_n(Sr, jk, 0.0f);
                continue;
              }
              float rowmax = NEG_INF;
              for (int c = first; c < valid; c++) rowmax = std::max(rowmax, Sr[c]);
              const float mnew = std::max(m[r], rowmax), corr = fast_exp(m[r] - mnew);
              float lsum = 0;
#pragma omp simd reduction(+ : lsum)
              for (int c = first; c < valid; c++) {
                Sr[c] = fast_exp(Sr[c] - mnew);
                lsum += Sr[c];
              }
              for (int c = 0; c < first; c++) Sr[c] = 0.0f;
              for (int c = valid; c < jk; c++) Sr[c] = 0.0f;
              l[r] = l[r] * corr + lsum;
              for (int e = 0; e < hd; e++) acc[(size_t)r * hd + e] *= corr;
              m[r] = mnew;
            }
            gemm_nn(iq, hd, jk, 1.0f, S.data(), TK, vb + (size_t)j0 * ks, ks, 1.0f, acc.data(), hd);  // acc += P·V
          }
          for (int r = 0; r < iq; r++) {
            const int i = i0 + r;
            float* o = out + ((size_t)b * T + i) * os + (size_t)h * hd;
            const float inv = 1.0f / l[r];
            for (int e = 0; e < hd; e++) o[e] = acc[(size_t)r * hd + e] * inv;
            lse[((size_t)b * H + h) * T + i] = m[r] + std::log(l[r]);
          }
        }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int B, int T, int H, int KVH, int hd,
                        size_t qs, size_t ks, size_t os, const int32_t* seg) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KVH;
  const int n_qt = (T + TQ - 1) / TQ;
  const std::vector<int32_t> start = segment_starts(seg, B, T);
  auto lo = [&](int b, int i) { return seg ? (int)start[(size_t)b * T + i] : 0; };
  // One task per (batch, kv head): it owns dk/dv of that head and dq of the query heads in its group.
#pragma omp parallel
  {
    std::vector<float> P(TQ * TK), dS(TQ * TK), D(TQ);
#pragma omp for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
      for (int g = 0; g < KVH; g++) {
        const float* kb = k + (size_t)b * T * ks + (size_t)g * hd;
        const float* vb = v + (size_t)b * T * ks + (size_t)g * hd;
        float* dkb = dk + (size_t)b * T * ks + (size_t)g * hd;
        float* dvb = dv + (size_t)b * T * ks + (size_t)g * hd;
        for (int t = 0; t < T; t++) {
          std::fill_n(dkb + (size_t)t * ks, hd, 0.0f);
          std::fill_n(dvb + (size_t)t * ks, hd, 0.0f);
        }
        for (int h = g * group; h < (g + 1) * group; h++) {
          const size_t qoff = (size_t)b * T * qs + (size_t)h * hd, ooff = (size_t)b * T * os + (size_t)h * hd;
          const float *qb = q + qoff, *ob = out + ooff, *dob = dout + ooff;
          float* dqb = dq + qoff;
          const float* lb = lse + ((size_t)b * H + h) * T;
          for (int t = 0; t < T; t++) std::fill_n(dqb + (size_t)t * qs, hd, 0.0f);
          for (int qt = 0; qt < n_qt; qt++) {
            const int i0 = qt * TQ, iq = std::min(TQ, T - i0);
            for (int r = 0; r < iq; r++) D[r] = dot(dob + (size_t)(i0 + r) * os, ob + (size_t)(i0 + r) * os, hd);
            for (int j0 = lo(b, i0); j0 < i0 + iq; j0 += TK) {  // the tiles of attention_forward
              const int jk = std::min(TK, i0 + iq - j0);
              const float *Qt = qb + (size_t)i0 * qs, *dOt = dob + (size_t)i0 * os;
              const float *Kt = kb + (size_t)j0 * ks, *Vt = vb + (size_t)j0 * ks;
              gemm_nt(iq, jk, hd, scale, Qt, qs, Kt, ks, 0.0f, P.data(), TK);   // S
              gemm_nt(iq, jk, hd, 1.0f, dOt, os, Vt, ks, 0.0f, dS.data(), TK);  // dP = dout·vᵀ
              for (int r = 0; r < iq; r++) {  // P = exp(S − lse), dS = P (dP − D)/√hd, zero outside [first, valid)
                const int valid = std::max(0, std::min(jk, i0 + r - j0 + 1));
                const int first = std::min(valid, std::max(0, lo(b, i0 + r) - j0));
                float *Pr = &P[(size_t)r * TK], *dSr = &dS[(size_t)r * TK];
                const float li = lb[i0 + r], Di = D[r];
#pragma omp simd
                for (int c = first; c < valid; c++) {
                  Pr[c] = fast_exp(Pr[c] - li);
                  dSr[c] = Pr[c] * (dSr[c] - Di) * scale;
                }
                for (int c = 0; c < first; c++) Pr[c] = dSr[c] = 0.0f;
                for (int c = valid; c < jk; c++) Pr[c] = dSr[c] = 0.0f;
              }
              gemm_tn(jk, hd, iq, 1.0f, P.data(), TK, dOt, os, 1.0f, dvb + (size_t)j0 * ks, ks);  // dV += Pᵀ·dout
              gemm_nn(iq, hd, jk, 1.0f, dS.data(), TK, Kt, ks, 1.0f, dqb + (size_t)i0 * qs, qs);  // dQ += dS·K
              gemm_tn(jk, hd, iq, 1.0f, dS.data(), TK, Qt, qs, 1.0f, dkb + (size_t)j0 * ks, ks);  // dK += dSᵀ·Q
            }
          }
        }
      }
  }
}

void attention_cached(float* out, const float* q, size_t qs, const float* kc, const float* vc, const int32_t* seq,
                      const int32_t* pos, int rows, int H, int KVH, int hd, int max_len) {
  const float scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KVH;
  const size_t kvs = (size_t)KVH * hd;
#pragma omp parallel
  {
    std::vector<float> p;
#pragma omp for collapse(2) schedule(dynamic)
    for (int r = 0; r < rows; r++)
      for (int h = 0; h < H; h++) {
        const int g = h / group, n = pos[r] + 1;
        const float* qr = q + (size_t)r * qs + (size_t)h * hd;
        const float* kb = kc + (size_t)seq[r] * max_len * kvs + (size_t)g * hd;
        const float* vb = vc + (size_t)seq[r] * max_len * kvs + (size_t)g * hd;
        p.resize(n);
        float mx = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < n; j++) {
          p[j] = scale * dot(qr, kb + (size_t)j * kvs, hd);
          mx = std::max(mx, p[j]);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) sum += (p[j] = fast_exp(p[j] - mx));
        float* o = out + (size_t)r * H * hd + (size_t)h * hd;
        std::fill_n(o, hd, 0.0f);
        for (int j = 0; j < n; j++) {
          const float w = p[j] / sum;
          const float* vj = vb + (size_t)j * kvs;
#pragma omp simd
          for (int e = 0; e < hd; e++) o[e] += w * vj[e];
        }
      }
  }
}

// ---- SwiGLU ------------------------------------------------------------------------------------------------------------------
void swiglu_forward(float* out, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float *g = gu + (size_t)n * 2 * F, *u = g + F;
    float* o = out + (size_t)n * F;
#pragma omp simd
    for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + fast_exp(-g[i])) * u[i];
  }
}

void swiglu_backward(float* dgu, const float* dout, const float* gu, int N, int F) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float *g = gu + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
    float *dg = dgu + (size_t)n * 2 * F, *du = dg + F;
#pragma omp simd
    for (int i = 0; i < F; i++) {
      const float sig = 1.0f / (1.0f + fast_exp(-g[i]));
      dg[i] = d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
      du[i] = d[i] * g[i] * sig;
    }
  }
}

void residual_forward(float* x, const float* y, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) x[i] += y[i];
}

// ---- LM head + cross-entropy ------------------------------------------------------------------------------------------------
constexpr int CE_CHUNK = 512;  // rows of logits alive at once

double lm_head_cross_entropy(Comm& tp, float* dh, float* dw, const float* h, const float* w, const int32_t* targets,
                             const float* mask, float denom, int N, int d, int V, int v0, int Vl) {
  const int R_max = std::min(N, CE_CHUNK);
  const int valid = std::max(0, std::min(Vl, V - v0));  // local columns inside the true vocabulary
  std::vector<float> logits((size_t)R_max * Vl), mx(R_max), zt(R_max), lse(R_max);
  std::vector<double> sum(R_max);
  std::vector<double> row_loss(N, 0.0);
  for (int n0 = 0; n0 < N; n0 += CE_CHUNK) {
    const int R = std::min(CE_CHUNK, N - n0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, Vl, d, 1.0f, h + (size_t)n0 * d, d, w, d, 0.0f,
                logits.data(), Vl);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {  // local max, local Σ exp(z − local max), the target logit if held here
      const float* z = logits.data() + (size_t)r * Vl;
      float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
      for (int c = 0; c < valid; c++) m = std::max(m, z[c]);
      double s = 0;  // fp64 accumulation: tens of thousands of terms
#pragma omp simd reduction(+ : s)
      for (int c = 0; c < valid; c++) s += fast_exp(z[c] - m);
      mx[r] = m;
      sum[r] = s;
      const int t = targets[n0 + r] - v0;
      zt[r] = (t >= 0 && t < valid) ? z[t] : 0.0f;
    }
    if (tp.size() > 1) {  // combine shards: M = max_k m_k, S = Σ_k s_k · exp(m_k − M)
      std::vector<float> local_max(mx.begin(), mx.begin() + R);
      tp.all_reduce_max(mx.data(), R);
      for (int r = 0; r < R; r++) sum[r] = valid ? sum[r] * std::exp((double)local_max[r] - mx[r]) : 0.0;
      tp.all_reduce_sum(sum.data(), R);
      tp.all_reduce_sum(zt.data(), R);
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
      const int n = n0 + r;
      lse[r] = mx[r] + (float)std::log(sum[r]);
      row_loss[n] = mask[n] * ((double)lse[r] - zt[r]);
      if (!dh) continue;
      float* z = logits.data() + (size_t)r * Vl;
      const float s = mask[n] / denom, l = lse[r];
#pragma omp simd
      for (int c = 0; c < valid; c++) z[c] = s * fast_exp(z[c] - l);
      for (int c = valid; c < Vl; c++) z[c] = 0.0f;  // padded vocabulary: masked out of the softmax
      const int t = targets[n] - v0;
      if (t >= 0 && t < valid) z[t] -= s;
    }
    if (dh) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, d, Vl, 1.0f, logits.data(), Vl, w, d, 0.0f,
                  dh + (size_t)n0 * d, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Vl, d, R, 1.0f, logits.data(), Vl,
                  h + (size_t)n0 * d, d, 1.0f, dw, d);
    }
  }
  double total = 0;
  for (int n = 0; n < N; n++) total += row_loss[n];
  return total;
}

void lm_head_logits(float* out, const float* h, const float* w, int N, int d, int V, int Vp) {
  if (N <= GEMV_ROWS) {  // padding rows of the head are skipped: only the V true rows are multiplied
    matmul_forward(out, h, w, N, d, V);
    return;
  }
  std::vector<float> chunk((size_t)std::min(N, CE_CHUNK) * Vp);
  for (int n0 = 0; n0 < N; n0 += CE_CHUNK) {
    const int R = std::min(CE_CHUNK, N - n0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, Vp, d, 1.0f, h + (size_t)n0 * d, d, w, d, 0.0f,
                chunk.data(), Vp);
    for (int r = 0; r < R; r++) std::copy_n(chunk.data() + (size_t)r * Vp, V, out + (size_t)(n0 + r) * V);
  }
}

}  // namespace mt
