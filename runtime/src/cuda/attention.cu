// attention.cu — causal GQA attention on the GPU, flash-style: key/value tiles in shared memory, an online
// softmax per query row, log-sum-exp saved for backward; nothing of size T×T is ever stored.
//
// Forward, one block per (query tile of QB rows, head h, batch b); each warp owns RQ query rows, each lane one
// key of the current KB-key tile (score s_j = q·k_j), then lanes switch to owning head-dim features for the
// P·V accumulation (p_j broadcast with a shuffle):
//   m' = max(m, max_j s_j);  l' = l·e^{m−m'} + Σ_j e^{s_j−m'};  acc' = acc·e^{m−m'} + Σ_j e^{s_j−m'} v_j
//   out = acc / l;  lse = m + log l
// Backward (FlashAttention-2 math, two passes without atomics): D_t = dout_t·out_t; the dq pass walks key tiles
// for each query row exactly like forward (dS_tj = P_tj (dout_t·v_j − D_t), dq_t = Σ_j dS_tj k_j /√hd), the
// dk/dv pass walks query tiles for each key (dv_j = Σ_t P_tj dout_t, dk_j = Σ_t dS_tj q_t /√hd), summing over
// the H/KVH query heads that share the kv head.
// Packed rows: with `start` ([B, T], each token's segment start, non-decreasing along a row) query t sees keys
// start_t ≤ j ≤ t; key tiles wholly before a query's start are skipped.
// These CUDA-core kernels are the fallback: bf16 attention with head_dim 64 or 128 goes to the tensor-core kernels
// of attention_mma.cu unless MEDITRON_CUDA_ATTENTION=simple (read on every call).
#include <cfloat>

#include "cuda/kernels.cuh"

namespace mt::cuda {

namespace {

constexpr int WARPS = 8;     // warps per block
constexpr int RQ = 4;        // query rows per warp
constexpr int QB = WARPS * RQ;  // query rows per block
constexpr int KB = 32;       // keys per tile (one per lane)
constexpr int MAXC = 8;      // head-dim features per lane: hd ≤ 32·MAXC = 256
constexpr int KW = 2;        // keys per warp in the dk/dv pass
constexpr int KBB = WARPS * KW;  // keys per block in the dk/dv pass
constexpr int QT = 32;       // query rows per tile in the dk/dv pass

// Segment start of query t (0 without packed rows; t past the end clamps to the last row).
__device__ __forceinline__ int seg_start(const int32_t* sb, int t, int T) { return sb ? sb[min(t, T - 1)] : 0; }
// The first key tile a block of queries from q0 needs: the one holding q0's segment start (starts ascend).
__device__ __forceinline__ int first_key_tile(const int32_t* sb, int q0) { return sb ? sb[q0] / KB * KB : 0; }

// Loads rows [r0, r0 + n) (rows beyond T are zero) of a [T, ·] bf16 tensor with row stride `stride` (head
// offset applied by the caller) into shared memory rows `ld` floats apart, times `scale`.
__device__ void load_rows(float* dst, int ld, const bf16* src, size_t stride, int r0, int n, int T, int hd,
                          float scale) {
  for (int e = threadIdx.x; e < n * hd; e += blockDim.x) {
    const int r = e / hd, c = e % hd;
    dst[r * ld + c] = r0 + r < T ? __bfloat162float(src[(size_t)(r0 + r) * stride + c]) * scale : 0.0f;
  }
}

__global__ void attention_forward_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                         int T, int H, int KVH, int hd, size_t qs, size_t ks, size_t os,
                                         const int32_t* start) {
  MT_DYNAMIC_SHARED(float, smem);
  float* q_s = smem;                   // [QB][hd]
  float* k_s = q_s + QB * hd;          // [KB][hd + 1]
  float* v_s = k_s + KB * (hd + 1);    // [KB][hd]
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * QB, g = h / (H / KVH);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float scale = rsqrtf((float)hd);
  const bf16* qb = q + (size_t)b * T * qs + (size_t)h * hd;
  const bf16* kb = k + (size_t)b * T * ks + (size_t)g * hd;
  const bf16* vb = v + (size_t)b * T * ks + (size_t)g * hd;
  load_rows(q_s, hd, qb, qs, q0, QB, T, hd, scale);
  const int32_t* sb = start ? start + (size_t)b * T : nullptr;
  float m[RQ], l[RQ], acc[RQ][MAXC];
  int st[RQ];
#pragma unroll
  for (int i = 0; i < RQ; i++) {
    m[i] = -FLT_MAX, l[i] = 0;
    st[i] = seg_start(sb, q0 + warp * RQ + i, T);
#pragma unroll
    for (int c = 0; c < MAXC; c++) acc[i][c] = 0;
  }
  const int last = min(T - 1, q0 + QB - 1);
  for (int k0 = first_key_tile(sb, q0); k0 <= last; k0 += KB) {
    __syncthreads();
    load_rows(k_s, hd + 1, kb, ks, k0, KB, T, hd, 1.0f);
    load_rows(v_s, hd, vb, ks, k0, KB, T, hd, 1.0f);
    __syncthreads();
    const int j = k0 + lane;
    float s[RQ];
#pragma unroll
    for (int i = 0; i < RQ; i++) s[i] = 0;
    for (int c = 0; c < hd; c++) {
      const float kc = k_s[lane * (hd + 1) + c];
#pragma unroll
      for (int i = 0; i < RQ; i++) s[i] += q_s[(warp * RQ + i) * hd + c] * kc;
    }
#pragma unroll
    for (int i = 0; i < RQ; i++) {
      const int t = q0 + warp * RQ + i;
      if (t >= T || k0 > t || k0 + KB <= st[i]) continue;  // uniform over the warp
      const bool valid = j <= t && j >= st[i];
      const float mx = warp_max(valid ? s[i] : -FLT_MAX);
      const float m_new = fmaxf(m[i], mx);
      const float p = valid ? __expf(s[i] - m_new) : 0.0f;
      const float corr = __expf(m[i] - m_new);
      l[i] = l[i] * corr + warp_sum(p);
#pragma unroll
      for (int c = 0; c < MAXC; c++) acc[i][c] *= corr;
      for (int jj = 0; jj < KB; jj++) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
        for (int c = 0; c < MAXC; c++)
          if (lane + 32 * c < hd) acc[i][c] += pj * v_s[jj * hd + lane + 32 * c];
      }
      m[i] = m_new;
    }
  }
#pragma unroll
  for (int i = 0; i < RQ; i++) {
    const int t = q0 + warp * RQ + i;
    if (t >= T) continue;
    const float inv = 1.0f / l[i];
    bf16* o = out + ((size_t)b * T + t) * os + (size_t)h * hd;
#pragma unroll
    for (int c = 0; c < MAXC; c++)
      if (lane + 32 * c < hd) o[lane + 32 * c] = __float2bfloat16(acc[i][c] * inv);
    if (lane == 0) lse[((size_t)b * H + h) * T + t] = m[i] + logf(l[i]);
  }
}

// D[b, h, t] = Σ_i dout·out, one warp per (row, head).
__global__ void attention_d_kernel(float* D, const bf16* dout, const bf16* out, int B, int T, int H, int hd,
                                   size_t os) {
  const size_t w = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= (size_t)B * T * H) return;
  const size_t row = w / H;  // b·T + t
  const int h = (int)(w % H);
  const bf16* a = dout + row * os + (size_t)h * hd;
  const bf16* o = out + row * os + (size_t)h * hd;
  float s = 0;
  for (int i = lane; i < hd; i += 32) s += __bfloat162float(a[i]) * __bfloat162float(o[i]);
  s = warp_sum(s);
  const size_t b = row / T, t = row % T;
  if (lane == 0) D[(b * H + h) * T + t] = s;
}

__global__ void attention_dq_kernel(float* dq, size_t gs, const float* D, const bf16* dout, const bf16* q,
                                    const bf16* k, const bf16* v, const float* lse, int T, int H, int KVH, int hd,
                                    size_t qs, size_t ks, size_t os, const int32_t* start) {
  MT_DYNAMIC_SHARED(float, smem);
  float* q_s = smem;                  // [QB][hd], scaled by 1/√hd
  float* do_s = q_s + QB * hd;        // [QB][hd]
  float* k_s = do_s + QB * hd;        // [KB][hd + 1]
  float* v_s = k_s + KB * (hd + 1);   // [KB][hd + 1]
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * QB, g = h / (H / KVH);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const float scale = rsqrtf((float)hd);
  const bf16* kb = k + (size_t)b * T * ks + (size_t)g * hd;
  const bf16* vb = v + (size_t)b * T * ks + (size_t)g * hd;
  load_rows(q_s, hd, q + (size_t)b * T * qs + (size_t)h * hd, qs, q0, QB, T, hd, scale);
  load_rows(do_s, hd, dout + (size_t)b * T * os + (size_t)h * hd, os, q0, QB, T, hd, 1.0f);
  const int32_t* sb = start ? start + (size_t)b * T : nullptr;
  float lse_r[RQ], D_r[RQ], acc[RQ][MAXC];
  int st[RQ];
#pragma unroll
  for (int i = 0; i < RQ; i++) {
    const int t = q0 + warp * RQ + i;
    const size_t at = ((size_t)b * H + h) * T + (t < T ? t : 0);
    lse_r[i] = lse[at], D_r[i] = D[at];
    st[i] = seg_start(sb, t, T);
#pragma unroll
    for (int c = 0; c < MAXC; c++) acc[i][c] = 0;
  }
  const int last = min(T - 1, q0 + QB - 1);
  for (int k0 = first_key_tile(sb, q0); k0 <= last; k0 += KB) {
    __syncthreads();
    load_rows(k_s, hd + 1, kb, ks, k0, KB, T, hd, 1.0f);
    load_rows(v_s, hd + 1, vb, ks, k0, KB, T, hd, 1.0f);
    __syncthreads();
    const int j = k0 + lane;
    float s[RQ], dp[RQ];
#pragma unroll
    for (int i = 0; i < RQ; i++) s[i] = 0, dp[i] = 0;
    for (int c = 0; c < hd; c++) {
      const float kc = k_s[lane * (hd + 1) + c], vc = v_s[lane * (hd + 1) + c];
#pragma unroll
      for (int i = 0; i < RQ; i++) {
        s[i] += q_s[(warp * RQ + i) * hd + c] * kc;
        dp[i] += do_s[(warp * RQ + i) * hd + c] * vc;
      }
    }
#pragma unroll
    for (int i = 0; i < RQ; i++) {
      const int t = q0 + warp * RQ + i;
      if (t >= T || k0 > t || k0 + KB <= st[i]) continue;
      const float p = j <= t && j >= st[i] ? __expf(s[i] - lse_r[i]) : 0.0f;
      const float ds = p * (dp[i] - D_r[i]);
      for (int jj = 0; jj < KB; jj++) {
        const float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
        for (int c = 0; c < MAXC; c++)
          if (lane + 32 * c < hd) acc[i][c] += dsj * k_s[jj * (hd + 1) + lane + 32 * c];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < RQ; i++) {
    const int t = q0 + warp * RQ + i;
    if (t >= T) continue;
    float* o = dq + ((size_t)b * T + t) * gs + (size_t)h * hd;
#pragma unroll
    for (int c = 0; c < MAXC; c++)
      if (lane + 32 * c < hd) o[lane + 32 * c] = acc[i][c] * scale;
  }
}

// One block per (KBB keys, kv head g, batch b); warp w owns keys k0 + w·KW + {0..KW−1}, lanes own features.
__global__ void attention_dkdv_kernel(float* dk, float* dv, size_t gs, const float* D, const bf16* dout,
                                      const bf16* q, const bf16* k, const bf16* v, const float* lse, int T, int H,
                                      int KVH, int hd, size_t qs, size_t ks, size_t os, const int32_t* start) {
  MT_DYNAMIC_SHARED(float, smem);
  float* q_s = smem;              // [QT][hd], scaled by 1/√hd
  float* do_s = q_s + QT * hd;    // [QT][hd]
  float* lse_s = do_s + QT * hd;  // [QT]
  float* D_s = lse_s + QT;        // [QT]
  int32_t* st_s = reinterpret_cast<int32_t*>(D_s + QT);  // [QT] segment starts
  const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * KBB;
  const int32_t* sb = start ? start + (size_t)b * T : nullptr;
  const int kmax = min(k0 + KBB, T) - 1;  // this block's last key
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rep = H / KVH;
  const float scale = rsqrtf((float)hd);
  float kr[KW][MAXC], vr[KW][MAXC], dkr[KW][MAXC], dvr[KW][MAXC];
  int jk[KW];
#pragma unroll
  for (int w = 0; w < KW; w++) {
    jk[w] = k0 + warp * KW + w;
    const size_t row = ((size_t)b * T + min(jk[w], T - 1)) * ks + (size_t)g * hd;
#pragma unroll
    for (int c = 0; c < MAXC; c++) {
      const int f = lane + 32 * c;
      kr[w][c] = f < hd ? __bfloat162float(k[row + f]) : 0.0f;
      vr[w][c] = f < hd ? __bfloat162float(v[row + f]) : 0.0f;
      dkr[w][c] = 0, dvr[w][c] = 0;
    }
  }
  for (int hh = 0; hh < rep; hh++) {
    const int h = g * rep + hh;
    for (int t0 = k0 - k0 % QT; t0 < T; t0 += QT) {
      if (sb && sb[t0] > kmax) break;  // starts ascend: no later query sees a key of this block
      __syncthreads();
      load_rows(q_s, hd, q + (size_t)b * T * qs + (size_t)h * hd, qs, t0, QT, T, hd, scale);
      load_rows(do_s, hd, dout + (size_t)b * T * os + (size_t)h * hd, os, t0, QT, T, hd, 1.0f);
      for (int r = threadIdx.x; r < QT; r += blockDim.x) {
        const size_t at = ((size_t)b * H + h) * T + min(t0 + r, T - 1);
        lse_s[r] = lse[at], D_s[r] = D[at];
        st_s[r] = seg_start(sb, t0 + r, T);
      }
      __syncthreads();
      for (int r = 0; r < QT; r++) {
        const int t = t0 + r;
        if (t >= T) break;
#pragma unroll
        for (int w = 0; w < KW; w++) {
          if (jk[w] >= T || jk[w] > t || jk[w] < st_s[r]) continue;  // uniform over the warp
          float s = 0, dp = 0;
#pragma unroll
          for (int c = 0; c < MAXC; c++) {
            const int f = lane + 32 * c;
            if (f < hd) s += q_s[r * hd + f] * kr[w][c], dp += do_s[r * hd + f] * vr[w][c];
          }
          s = warp_sum(s), dp = warp_sum(dp);
          const float p = __expf(s - lse_s[r]);
          const float ds = p * (dp - D_s[r]);
#pragma unroll
          for (int c = 0; c < MAXC; c++) {
            const int f = lane + 32 * c;
            if (f < hd) dvr[w][c] += p * do_s[r * hd + f], dkr[w][c] += ds * q_s[r * hd + f];
          }
        }
      }
    }
  }
#pragma unroll
  for (int w = 0; w < KW; w++) {
    if (jk[w] >= T) continue;
    const size_t row = ((size_t)b * T + jk[w]) * gs + (size_t)g * hd;
#pragma unroll
    for (int c = 0; c < MAXC; c++) {
      const int f = lane + 32 * c;
      if (f < hd) dk[row + f] = dkr[w][c], dv[row + f] = dvr[w][c];  // q_s was scaled: dk has its 1/√hd
    }
  }
}

// One warp per (head, row): lanes own keys for the scores and features for the accumulation.
__global__ void attention_cached_kernel(bf16* out, const bf16* q, size_t qs, const bf16* kc, const bf16* vc,
                                        const int32_t* seq, const int32_t* pos, int H, int KVH, int hd,
                                        int max_len) {
  MT_DYNAMIC_SHARED(float, q_s);  // [hd]
  const int h = blockIdx.x, r = blockIdx.y, lane = threadIdx.x, g = h / (H / KVH);
  const float scale = rsqrtf((float)hd);
  for (int f = lane; f < hd; f += 32) q_s[f] = __bfloat162float(q[(size_t)r * qs + (size_t)h * hd + f]) * scale;
  __syncwarp();
  const size_t kvs = (size_t)KVH * hd;
  const bf16* kb = kc + (size_t)seq[r] * max_len * kvs + (size_t)g * hd;
  const bf16* vb = vc + (size_t)seq[r] * max_len * kvs + (size_t)g * hd;
  const int n = pos[r] + 1;
  float m = -FLT_MAX, l = 0, acc[MAXC];
#pragma unroll
  for (int c = 0; c < MAXC; c++) acc[c] = 0;
  for (int j0 = 0; j0 < n; j0 += 32) {
    const int j = j0 + lane;
    float s = -FLT_MAX;
    if (j < n) {
      s = 0;
      for (int f = 0; f < hd; f++) s += q_s[f] * __bfloat162float(kb[(size_t)j * kvs + f]);
    }
    const float m_new = fmaxf(m, warp_max(s));
    const float p = j < n ? __expf(s - m_new) : 0.0f;
    const float corr = __expf(m - m_new);
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int c = 0; c < MAXC; c++) acc[c] *= corr;
    const int cnt = min(32, n - j0);
    for (int jj = 0; jj < cnt; jj++) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
      for (int c = 0; c < MAXC; c++)
        if (lane + 32 * c < hd) acc[c] += pj * __bfloat162float(vb[(size_t)(j0 + jj) * kvs + lane + 32 * c]);
    }
    m = m_new;
  }
  const float inv = 1.0f / l;
#pragma unroll
  for (int c = 0; c < MAXC; c++)
    if (lane + 32 * c < hd) out[(size_t)r * H * hd + (size_t)h * hd + lane + 32 * c] = __float2bfloat16(acc[c] * inv);
}

__global__ void kv_store_kernel(bf16* kc, bf16* vc, const bf16* qkv, size_t qs, size_t koff, size_t voff,
                                const int32_t* seq, const int32_t* pos, int rows, int kvd, int max_len) {
  const size_t total = (size_t)rows * kvd;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t r = e / kvd, c = e % kvd;
    const size_t at = ((size_t)seq[r] * max_len + pos[r]) * kvd + c;
    kc[at] = qkv[r * qs + koff + c];
    vc[at] = qkv[r * qs + voff + c];
  }
}

// Dynamic shared memory above the default 48 KiB needs an opt-in per kernel.
template <class K>
void allow_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void check_hd(int hd) {
  MT_CHECK(hd <= 32 * MAXC && hd % 2 == 0, "the CUDA attention kernels support head_dim <= %d (got %d)", 32 * MAXC,
           hd);
}

// The attention grids put heads and rows (or batch entries) on gridDim.y and .z, which stop at 65535.
void check_grid(int rows, int heads) {
  MT_CHECK(rows <= 65535 && heads <= 65535,
           "the CUDA attention kernels take at most 65535 rows and 65535 heads per launch (got %d rows, %d heads)",
           rows, heads);
}

}  // namespace

void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                       int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s, const int32_t* start) {
  profile_mark(Work::Attention, s);
  check_grid(B, H);
  if (attention_mma_supported(hd, q, k, v, out, qs, ks, os))
    return attention_forward_mma(out, lse, q, k, v, B, T, H, KVH, hd, qs, ks, os, s, start);
  check_hd(hd);
  const size_t smem = (size_t)(QB * hd + KB * (hd + 1) + KB * hd) * sizeof(float);
  allow_smem(attention_forward_kernel, smem);
  const dim3 grid(ceil_div(T, QB), H, B);
  MT_LAUNCH(attention_forward_kernel, grid, WARPS * 32, smem, s)(out, lse, q, k, v, T, H, KVH, hd, qs, ks, os, start);
  CUDA_LAUNCH_CHECK();
}

void attention_backward(float* dq, float* dk, float* dv, size_t gs, float* D, const bf16* dout, const bf16* q,
                        const bf16* k, const bf16* v, const bf16* out, const float* lse, int B, int T, int H,
                        int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s, const int32_t* start) {
  profile_mark(Work::Attention, s);
  check_hd(hd);
  check_grid(B, H);
  MT_LAUNCH(attention_d_kernel, ceil_div((size_t)B * T * H, WARPS), WARPS * 32, 0, s)(D, dout, out, B, T, H, hd, os);
  CUDA_LAUNCH_CHECK();
  if (attention_mma_supported(hd, q, k, v, dout, qs, ks, os))
    return attention_backward_mma(dq, dk, dv, gs, D, dout, q, k, v, lse, B, T, H, KVH, hd, qs, ks, os, s, start);
  const size_t smem_q = (size_t)(2 * QB * hd + 2 * KB * (hd + 1)) * sizeof(float);
  allow_smem(attention_dq_kernel, smem_q);
  MT_LAUNCH(attention_dq_kernel, dim3(ceil_div(T, QB), H, B), WARPS * 32, smem_q, s)(dq, gs, D, dout, q, k, v, lse,
                                                                                     T, H, KVH, hd, qs, ks, os, start);
  CUDA_LAUNCH_CHECK();
  const size_t smem_k = (size_t)(2 * QT * hd + 2 * QT) * sizeof(float) + QT * sizeof(int32_t);
  allow_smem(attention_dkdv_kernel, smem_k);
  MT_LAUNCH(attention_dkdv_kernel, dim3(ceil_div(T, KBB), KVH, B), WARPS * 32, smem_k, s)(
      dk, dv, gs, D, dout, q, k, v, lse, T, H, KVH, hd, qs, ks, os, start);
  CUDA_LAUNCH_CHECK();
}

void attention_cached(bf16* out, const bf16* q, size_t qs, const bf16* kc, const bf16* vc, const int32_t* seq,
                      const int32_t* pos, int rows, int H, int KVH, int hd, int max_len, cudaStream_t s) {
  check_hd(hd);
  check_grid(rows, H);
  MT_LAUNCH(attention_cached_kernel, dim3(H, rows), 32, hd * sizeof(float), s)(out, q, qs, kc, vc, seq, pos, H, KVH, hd,
                                                                        max_len);
  CUDA_LAUNCH_CHECK();
}

void kv_store(bf16* kc, bf16* vc, const bf16* qkv, size_t qs, size_t koff, size_t voff, const int32_t* seq,
              const int32_t* pos, int rows, int kvd, int max_len, cudaStream_t s) {
  const size_t total = (size_t)rows * kvd;
  MT_LAUNCH(kv_store_kernel, ceil_div(total, 256), 256, 0, s)(kc, vc, qkv, qs, koff, voff, seq, pos, rows, kvd,
                                                              max_len);
  CUDA_LAUNCH_CHECK();
}

}  // namespace mt::cuda
