// attention_mma.cu — causal GQA flash attention on the tensor cores (bf16 in, fp32 accumulate), head_dim 64 and
// 128, FlashAttention-2 structure. attention.cu dispatches here (attention_mma_supported) and keeps its CUDA-core
// kernels as the fallback for other head dims and for MEDITRON_CUDA_ATTENTION=simple.
//
// Tensor-core primitive: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, D[16×8] += A[16×16]·B[16×8], per warp.
// With lane = 4·gid + tig (gid = lane/4 ∈ 0..7, tig = lane%4 ∈ 0..3), each lane holds:
//   A (4 × bf16x2): a0 = A[gid][2tig..2tig+1], a1 = A[gid+8][2tig..], a2 = A[gid][2tig+8..], a3 = A[gid+8][2tig+8..]
//   B (2 × bf16x2): b0 = B[2tig..2tig+1][gid],  b1 = B[2tig+8..2tig+9][gid]
//   C (4 × f32):    c0,c1 = C[gid][2tig..2tig+1],  c2,c3 = C[gid+8][2tig..2tig+1]
// The accumulator of two neighbouring 16×8 tiles is, element for element, the A operand of a 16×16 tile (c0c1 of
// tile 2kk → a0, c2c3 → a1; of tile 2kk+1 → a2, a3): softmax probabilities go from S = Q·Kᵀ into P·V without
// leaving registers. A B operand B[k][n] = X[n][k] (X row-major in shared memory, e.g. K for Q·Kᵀ) is one 32-bit
// load per register; B[k][n] = X[k][n] (e.g. V for P·V) is two 16-bit loads from rows k and k+1 (frag_b_kn).
// Shared rows are padded by 8 bf16 (16 bytes) so that both patterns hit 32 distinct banks.
//
// Forward, one CTA of 4 warps per (64-query block, head h, batch b), warp w owns queries q0+16w..q0+16w+15 (its Q
// fragments stay in registers); for each 64-key tile up to the diagonal (K and V staged by cp.async, the next K
// tile loading during P·V and the next V tile during the next Q·Kᵀ), in the log2 domain (s = q·k/√hd·log2 e):
//   m' = max(m, max_j s_j);  l' = l·2^{m−m'} + Σ_j 2^{s_j−m'};  O' = O·2^{m−m'} + P·V with P_j = 2^{s_j−m'}
//   out = O/l;  lse = (m + log2 l)·ln 2  (natural log, as the CUDA-core kernel and the CPU backend store it)
// Backward, one CTA of 4 warps per (64-key block, kv head g, batch b), warp w owns keys k0+16w..k0+16w+15; it walks
// every query head h of the group and every 32-query tile at or after the block's first key (Q, dO, lse, D double
// buffered, the next tile's cp.async in flight during this one), with D_t = dout_t·out_t (attention_d_kernel):
//   Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ [16 keys × 32 queries per warp];  Pᵀ = exp(Sᵀ/√hd − lse);  dSᵀ = Pᵀ∘(dPᵀ − D)
//   dV += Pᵀ·dO;  dK += dSᵀ·Q  (registers, 16 keys × hd per warp; dK scaled by 1/√hd at the end)
//   dQ += dS·K/√hd  (dS through shared memory; warp (w%2, w/2) owns 16 queries × hd/2; fp32 atomicAdd into dq,
//   which the launcher zeroes first — the sum over key blocks is in an unspecified order)
// Packed rows: with `start` ([B, T], the first position of each token's segment, non-decreasing along a row),
// query t attends to keys start_t ≤ j ≤ t. Forward skips the key tiles before its first row's start; backward
// stops at the first query tile whose queries all start after the block's last key. A row with no valid key in
// a tile keeps m = −∞ and adds nothing (the max is taken as 0 for the exponentials).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cuda/kernels.cuh"

namespace mt::cuda {

namespace {

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;
constexpr int THREADS = 128;  // 4 warps

__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#ifdef MEDITRON_CUDA_EMULATE
  ::mt::emu::mma_m16n8k16_bf16(c, a, b0, b1);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Two consecutive bf16 (p[0] in the low half).
__device__ __forceinline__ uint32_t ld32(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }
// p[0] and p[ld] (rows k and k+1 of one column) as a bf16x2, p[0] in the low half.
__device__ __forceinline__ uint32_t frag_b_kn(const bf16* p, int ld) {
  const uint32_t lo = *reinterpret_cast<const unsigned short*>(p);
  const uint32_t hi = *reinterpret_cast<const unsigned short*>(p + ld);
  return lo | (hi << 16);
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo is the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}

// 16-byte global → shared copy that bypasses L1; n = 0 zero-fills the 16 bytes (rows past T).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#ifdef MEDITRON_CUDA_EMULATE
  ::mt::emu::cp_async16(dst, src, valid);
#else
  const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#ifdef MEDITRON_CUDA_EMULATE
  ::mt::emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef MEDITRON_CUDA_EMULATE
  ::mt::emu::cp_async_wait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Starts copying rows [r0, r0 + ROWS) of a [T, ·] bf16 tensor (rows `stride` apart, head offset applied by the
// caller, 16-byte aligned) into shared rows LD = HD + 8 apart; rows ≥ T are zero. All THREADS threads call it.
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile_async(bf16* dst, const bf16* src, size_t stride, int r0, int T) {
  constexpr int CH = HD / 8, LD = HD + 8;  // 16-byte chunks per row
#pragma unroll
  for (int e = threadIdx.x; e < ROWS * CH; e += THREADS) {
    const int r = e / CH, c = (e % CH) * 8, row = r0 + r;
    const bool ok = row < T;
    cp_async16(dst + r * LD + c, src + (size_t)(ok ? row : 0) * stride + c, ok);
  }
}

template <int HD>
__global__ void __launch_bounds__(THREADS) attention_forward_mma_kernel(bf16* out, float* lse, const bf16* q,
                                                                        const bf16* k, const bf16* v, int T, int H,
                                                                        int KVH, size_t qs, size_t ks, size_t os,
                                                                        const int32_t* start) {
  constexpr int BQ = 64, BK = 64, LD = HD + 8;
  __shared__ __align__(16) bf16 k_s[BK * LD];  // [BK keys][HD], rows padded
  __shared__ __align__(16) bf16 v_s[BK * LD];
  const int qblk = gridDim.x - 1 - blockIdx.x;  // the longest (last) query blocks start first
  const int b = blockIdx.z, h = blockIdx.y, q0 = qblk * BQ, g = h / (H / KVH);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane >> 2, tig = lane & 3;
  const bf16* qb = q + (size_t)b * T * qs + (size_t)h * HD;
  const bf16* kb = k + (size_t)b * T * ks + (size_t)g * HD;
  const bf16* vb = v + (size_t)b * T * ks + (size_t)g * HD;
  const int r0 = q0 + warp * 16 + gid, r1 = r0 + 8;  // this lane's two query rows (may be ≥ T: not written)
  const int last = min(T - 1, q0 + BQ - 1), ntiles = last / BK + 1;
  // Segment starts of this lane's rows, and the first key tile any row of the block needs (starts ascend).
  const int32_t* sb = start ? start + (size_t)b * T : nullptr;
  const int st0 = sb ? sb[min(r0, T - 1)] : 0, st1 = sb ? sb[min(r1, T - 1)] : 0;
  const int j0 = sb ? sb[q0] / BK : 0;
  load_tile_async<HD, BK>(k_s, kb, ks, j0 * BK, T);
  cp_async_commit();
  load_tile_async<HD, BK>(v_s, vb, ks, j0 * BK, T);
  cp_async_commit();
  // Q as A fragments, [16 rows × HD] per warp, for the whole loop.
  uint32_t qf[HD / 16][4];
  {
    const bf16* p0 = qb + (size_t)min(r0, T - 1) * qs + 2 * tig;
    const bf16* p1 = qb + (size_t)min(r1, T - 1) * qs + 2 * tig;
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
      qf[kc][0] = ld32(p0 + kc * 16), qf[kc][1] = ld32(p1 + kc * 16);
      qf[kc][2] = ld32(p0 + kc * 16 + 8), qf[kc][3] = ld32(p1 + kc * 16 + 8);
    }
  }
  const float sl2 = rsqrtf((float)HD) * LOG2E;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0, l1 = 0;  // rows r0, r1 (l: this lane's columns only)
  float o[HD / 8][4];
#pragma unroll
  for (int nt = 0; nt < HD / 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0;
  for (int j = j0; j < ntiles; j++) {
    const int k0 = j * BK;
    cp_async_wait<1>();  // K(j) landed (V(j) may be in flight)
    __syncthreads();
    // S = Q·Kᵀ [16 × BK] per warp; B[k][n] = K[n][k].
    float s[BK / 8][4];
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0;
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
#pragma unroll
      for (int nt = 0; nt < BK / 8; nt++) {
        const bf16* kp = k_s + (nt * 8 + gid) * LD + kc * 16 + 2 * tig;
        mma_bf16(s[nt], qf[kc], ld32(kp), ld32(kp + 8));
      }
    }
    __syncthreads();  // every warp is done with k_s
    if (j + 1 < ntiles) load_tile_async<HD, BK>(k_s, kb, ks, k0 + BK, T);
    cp_async_commit();  // (possibly empty: keeps the group count)
    // Causal (and segment) mask and the online softmax in the log2 domain. A row whose keys so far are all
    // masked keeps m = −∞; its exponentials use 0 as the max, so −∞ − (−∞) never occurs.
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int key = k0 + nt * 8 + 2 * tig + e;
        s[nt][e] = key <= r0 && key >= st0 ? s[nt][e] * sl2 : -INFINITY;
        s[nt][2 + e] = key <= r1 && key >= st1 ? s[nt][2 + e] * sl2 : -INFINITY;
        mx0 = fmaxf(mx0, s[nt][e]), mx1 = fmaxf(mx1, s[nt][2 + e]);
      }
    }
    // A row's 64 columns are spread over the 4 lanes with the same gid.
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float ms0 = mx0 == -INFINITY ? 0.0f : mx0, ms1 = mx1 == -INFINITY ? 0.0f : mx1;
    const float c0 = exp2f(m0 - ms0), c1 = exp2f(m1 - ms1);  // 0 while m = −∞
    m0 = mx0, m1 = mx1, l0 *= c0, l1 *= c1;
#pragma unroll
    for (int nt = 0; nt < HD / 8; nt++) o[nt][0] *= c0, o[nt][1] *= c0, o[nt][2] *= c1, o[nt][3] *= c1;
    uint32_t pf[BK / 16][4];  // P as A fragments (k = key)
#pragma unroll
    for (int nt = 0; nt < BK / 8; nt++) {
      const float p00 = exp2f(s[nt][0] - ms0), p01 = exp2f(s[nt][1] - ms0);
      const float p10 = exp2f(s[nt][2] - ms1), p11 = exp2f(s[nt][3] - ms1);
      l0 += p00 + p01, l1 += p10 + p11;
      pf[nt / 2][(nt % 2) * 2] = pack_bf16(p00, p01);
      pf[nt / 2][(nt % 2) * 2 + 1] = pack_bf16(p10, p11);
    }
    cp_async_wait<1>();  // V(j) landed (K(j+1) may be in flight)
    __syncthreads();
    // O += P·V [16 × HD] per warp; B[k][n] = V[k][n].
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
#pragma unroll
      for (int nt = 0; nt < HD / 8; nt++) {
        const bf16* vp = v_s + (kk * 16 + 2 * tig) * LD + nt * 8 + gid;
        mma_bf16(o[nt], pf[kk], frag_b_kn(vp, LD), frag_b_kn(vp + 8 * LD, LD));
      }
    }
    __syncthreads();  // every warp is done with v_s
    if (j + 1 < ntiles) load_tile_async<HD, BK>(v_s, vb, ks, k0 + BK, T);
    cp_async_commit();
  }
  cp_async_wait<0>();
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float i0 = 1.0f / l0, i1 = 1.0f / l1;
  bf16* ob = out + (size_t)b * T * os + (size_t)h * HD + 2 * tig;
#pragma unroll
  for (int nt = 0; nt < HD / 8; nt++) {
    if (r0 < T)
      *reinterpret_cast<__nv_bfloat162*>(ob + (size_t)r0 * os + nt * 8) =
          __floats2bfloat162_rn(o[nt][0] * i0, o[nt][1] * i0);
    if (r1 < T)
      *reinterpret_cast<__nv_bfloat162*>(ob + (size_t)r1 * os + nt * 8) =
          __floats2bfloat162_rn(o[nt][2] * i1, o[nt][3] * i1);
  }
  if (tig == 0) {
    float* lb = lse + ((size_t)b * H + h) * T;
    if (r0 < T) lb[r0] = m0 * LN2 + logf(l0);
    if (r1 < T) lb[r1] = m1 * LN2 + logf(l1);
  }
}

// Backward tile sizes: BKB keys per CTA (16 per warp), BQB queries per inner tile.
constexpr int BKB = 64, BQB = 32, LDS = BKB + 8;

template <int HD>
constexpr size_t backward_smem_bytes() {
  return (size_t)(2 * BKB * (HD + 8) + 4 * BQB * (HD + 8) + BQB * LDS) * sizeof(bf16) + 4 * BQB * sizeof(float) +
         2 * BQB * sizeof(int32_t);
}

template <int HD>
__global__ void __launch_bounds__(THREADS) attention_backward_mma_kernel(float* dq, float* dk, float* dv,
                                                                         size_t gs, const float* D,
                                                                         const bf16* dout, const bf16* q,
                                                                         const bf16* k, const bf16* v,
                                                                         const float* lse, int T, int H, int KVH,
                                                                         size_t qs, size_t ks, size_t os,
                                                                         const int32_t* start) {
  constexpr int LD = HD + 8;
  MT_DYNAMIC_SHARED(unsigned char, smem_raw);
  bf16* k_s = reinterpret_cast<bf16*>(smem_raw);  // [BKB][LD]
  bf16* v_s = k_s + BKB * LD;                     // [BKB][LD]
  bf16* q_s = v_s + BKB * LD;                     // [2][BQB][LD] (double buffer)
  bf16* do_s = q_s + 2 * BQB * LD;                // [2][BQB][LD]
  bf16* ds_s = do_s + 2 * BQB * LD;               // [BQB queries][LDS]: dS (not transposed), bf16
  float* lse_s = reinterpret_cast<float*>(ds_s + BQB * LDS);  // [2][BQB]
  float* D_s = lse_s + 2 * BQB;                               // [2][BQB]
  int32_t* st_s = reinterpret_cast<int32_t*>(D_s + 2 * BQB);  // [2][BQB] segment starts
  const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * BKB, rep = H / KVH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane >> 2, tig = lane & 3;
  const float scale = rsqrtf((float)HD), sl2 = scale * LOG2E;
  load_tile_async<HD, BKB>(k_s, k + (size_t)b * T * ks + (size_t)g * HD, ks, k0, T);
  load_tile_async<HD, BKB>(v_s, v + (size_t)b * T * ks + (size_t)g * HD, ks, k0, T);
  cp_async_commit();
  // Iterations i = (head of the group) × (query tile from the one holding key k0 to the last one that can see a
  // key of this block: with segments, the queries before the first one whose segment starts after the last key).
  const int32_t* sb = start ? start + (size_t)b * T : nullptr;
  int t_end = T;
  if (sb) {
    const int kmax = min(k0 + BKB, T) - 1;
    int lo = min(kmax + 1, T), hi = T;  // first t with sb[t] > kmax (starts ascend; sb[t] ≤ t), else T
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (sb[mid] > kmax) hi = mid;
      else lo = mid + 1;
    }
    t_end = lo;
  }
  const int tq0 = k0 / BQB, nqt = (t_end + BQB - 1) / BQB - tq0, iters = rep * nqt;
  auto issue = [&](int i) {  // starts loading iteration i's tiles into buffer i % 2
    if (i < iters) {
      const int h = g * rep + i / nqt, t0 = (tq0 + i % nqt) * BQB, buf = i & 1;
      load_tile_async<HD, BQB>(q_s + buf * BQB * LD, q + (size_t)b * T * qs + (size_t)h * HD, qs, t0, T);
      load_tile_async<HD, BQB>(do_s + buf * BQB * LD, dout + (size_t)b * T * os + (size_t)h * HD, os, t0, T);
      for (int r = threadIdx.x; r < BQB; r += THREADS) {
        const int t = t0 + r;
        const size_t at = ((size_t)b * H + h) * T + (t < T ? t : 0);
        lse_s[buf * BQB + r] = t < T ? lse[at] * LOG2E : 0.0f;
        D_s[buf * BQB + r] = t < T ? D[at] : 0.0f;
        st_s[buf * BQB + r] = sb && t < T ? sb[t] : 0;
      }
    }
    cp_async_commit();
  };
  const int key0 = k0 + warp * 16 + gid, key1 = key0 + 8;  // this lane's two key rows
  float dka[HD / 8][4], dva[HD / 8][4];
#pragma unroll
  for (int nt = 0; nt < HD / 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) dka[nt][e] = 0, dva[nt][e] = 0;
  issue(0);
  for (int i = 0; i < iters; i++) {
    issue(i + 1);
    cp_async_wait<1>();  // K, V and iteration i's tiles landed
    __syncthreads();     // … for every thread's copies, and lse_s/D_s/st_s stores are visible
    const int h = g * rep + i / nqt, t0 = (tq0 + i % nqt) * BQB, buf = i & 1;
    const bf16* qt = q_s + buf * BQB * LD;
    const bf16* dot = do_s + buf * BQB * LD;
    const float* ls = lse_s + buf * BQB;
    const float* Ds = D_s + buf * BQB;
    const int32_t* sts = st_s + buf * BQB;
    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, [16 keys × BQB queries] per warp; B[k][n] = Q[n][k] (dO[n][k]).
    float st[BQB / 8][4], dpt[BQB / 8][4];
#pragma unroll
    for (int nt = 0; nt < BQB / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) st[nt][e] = 0, dpt[nt][e] = 0;
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
      const bf16* kp = k_s + (warp * 16 + gid) * LD + kc * 16 + 2 * tig;
      const bf16* vp = v_s + (warp * 16 + gid) * LD + kc * 16 + 2 * tig;
      const uint32_t ka[4] = {ld32(kp), ld32(kp + 8 * LD), ld32(kp + 8), ld32(kp + 8 * LD + 8)};
      const uint32_t va[4] = {ld32(vp), ld32(vp + 8 * LD), ld32(vp + 8), ld32(vp + 8 * LD + 8)};
#pragma unroll
      for (int nt = 0; nt < BQB / 8; nt++) {
        const bf16* qp = qt + (nt * 8 + gid) * LD + kc * 16 + 2 * tig;
        const bf16* dp = dot + (nt * 8 + gid) * LD + kc * 16 + 2 * tig;
        mma_bf16(st[nt], ka, ld32(qp), ld32(qp + 8));
        mma_bf16(dpt[nt], va, ld32(dp), ld32(dp + 8));
      }
    }
    // Pᵀ = exp(Sᵀ/√hd − lse) where start_query ≤ key ≤ query < T, else 0;  dSᵀ = Pᵀ∘(dPᵀ − D).
    uint32_t pa[BQB / 16][4], dsa[BQB / 16][4];  // as A fragments (k = query)
#pragma unroll
    for (int nt = 0; nt < BQB / 8; nt++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int qi = nt * 8 + 2 * tig + e, t = t0 + qi;
        const float p0 = t < T && key0 <= t && key0 >= sts[qi] ? exp2f(st[nt][e] * sl2 - ls[qi]) : 0.0f;
        const float p1 = t < T && key1 <= t && key1 >= sts[qi] ? exp2f(st[nt][2 + e] * sl2 - ls[qi]) : 0.0f;
        const float ds0 = p0 * (dpt[nt][e] - Ds[qi]), ds1 = p1 * (dpt[nt][2 + e] - Ds[qi]);
        st[nt][e] = p0, st[nt][2 + e] = p1, dpt[nt][e] = ds0, dpt[nt][2 + e] = ds1;
        ds_s[qi * LDS + warp * 16 + gid] = __float2bfloat16(ds0);
        ds_s[qi * LDS + warp * 16 + gid + 8] = __float2bfloat16(ds1);
      }
      pa[nt / 2][(nt % 2) * 2] = pack_bf16(st[nt][0], st[nt][1]);
      pa[nt / 2][(nt % 2) * 2 + 1] = pack_bf16(st[nt][2], st[nt][3]);
      dsa[nt / 2][(nt % 2) * 2] = pack_bf16(dpt[nt][0], dpt[nt][1]);
      dsa[nt / 2][(nt % 2) * 2 + 1] = pack_bf16(dpt[nt][2], dpt[nt][3]);
    }
    // dV += Pᵀ·dO, dK += dSᵀ·Q  [16 keys × HD] per warp; B[k][n] = dO[k][n] (Q[k][n]).
#pragma unroll
    for (int kk = 0; kk < BQB / 16; kk++) {
#pragma unroll
      for (int nt = 0; nt < HD / 8; nt++) {
        const bf16* dp = dot + (kk * 16 + 2 * tig) * LD + nt * 8 + gid;
        const bf16* qp = qt + (kk * 16 + 2 * tig) * LD + nt * 8 + gid;
        mma_bf16(dva[nt], pa[kk], frag_b_kn(dp, LD), frag_b_kn(dp + 8 * LD, LD));
        mma_bf16(dka[nt], dsa[kk], frag_b_kn(qp, LD), frag_b_kn(qp + 8 * LD, LD));
      }
    }
    __syncthreads();  // ds_s holds all BKB keys
    // dQ[BQB × HD] += dS·K: warp w owns queries (w%2)·16.. and features (w/2)·HD/2..; B[k][n] = K[k][n].
    {
      const int qh = warp & 1, c0 = (warp >> 1) * (HD / 2);
      float acc[HD / 16][4];
#pragma unroll
      for (int nt = 0; nt < HD / 16; nt++) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0;
#pragma unroll
      for (int kc = 0; kc < BKB / 16; kc++) {
        const bf16* ap = ds_s + (qh * 16 + gid) * LDS + kc * 16 + 2 * tig;
        const uint32_t a[4] = {ld32(ap), ld32(ap + 8 * LDS), ld32(ap + 8), ld32(ap + 8 * LDS + 8)};
#pragma unroll
        for (int nt = 0; nt < HD / 16; nt++) {
          const bf16* bp = k_s + (kc * 16 + 2 * tig) * LD + c0 + nt * 8 + gid;
          mma_bf16(acc[nt], a, frag_b_kn(bp, LD), frag_b_kn(bp + 8 * LD, LD));
        }
      }
      const int ta = t0 + qh * 16 + gid, tb = ta + 8;
      float* dqb = dq + (size_t)b * T * gs + (size_t)h * HD + c0 + 2 * tig;
#pragma unroll
      for (int nt = 0; nt < HD / 16; nt++) {
        if (ta < T) {
          atomicAdd(dqb + (size_t)ta * gs + nt * 8, acc[nt][0] * scale);
          atomicAdd(dqb + (size_t)ta * gs + nt * 8 + 1, acc[nt][1] * scale);
        }
        if (tb < T) {
          atomicAdd(dqb + (size_t)tb * gs + nt * 8, acc[nt][2] * scale);
          atomicAdd(dqb + (size_t)tb * gs + nt * 8 + 1, acc[nt][3] * scale);
        }
      }
    }
    __syncthreads();  // ds_s and this iteration's buffer are free for iteration i + 1 and i + 2's loads
  }
  cp_async_wait<0>();
  // Each (key, kv head) belongs to exactly this CTA: plain stores, dK with its 1/√hd.
  float* dkb = dk + (size_t)b * T * gs + (size_t)g * HD + 2 * tig;
  float* dvb = dv + (size_t)b * T * gs + (size_t)g * HD + 2 * tig;
#pragma unroll
  for (int nt = 0; nt < HD / 8; nt++) {
    if (key0 < T) {
      dkb[(size_t)key0 * gs + nt * 8] = dka[nt][0] * scale, dkb[(size_t)key0 * gs + nt * 8 + 1] = dka[nt][1] * scale;
      dvb[(size_t)key0 * gs + nt * 8] = dva[nt][0], dvb[(size_t)key0 * gs + nt * 8 + 1] = dva[nt][1];
    }
    if (key1 < T) {
      dkb[(size_t)key1 * gs + nt * 8] = dka[nt][2] * scale, dkb[(size_t)key1 * gs + nt * 8 + 1] = dka[nt][3] * scale;
      dvb[(size_t)key1 * gs + nt * 8] = dva[nt][2], dvb[(size_t)key1 * gs + nt * 8 + 1] = dva[nt][3];
    }
  }
}

// dq rows (B·T of them, `gs` floats apart, the first `n` of each) = 0, before the atomics.
__global__ void zero_rows_kernel(float* x, size_t gs, size_t rows, int n) {
  const size_t total = rows * n;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x)
    x[(e / n) * gs + e % n] = 0.0f;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <int HD>
void forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H, int KVH,
                 size_t qs, size_t ks, size_t os, cudaStream_t s, const int32_t* start) {
  const dim3 grid(ceil_div(T, 64), H, B);
  MT_LAUNCH(attention_forward_mma_kernel<HD>, grid, THREADS, 0, s)(out, lse, q, k, v, T, H, KVH, qs, ks, os, start);
  CUDA_LAUNCH_CHECK();
}

template <int HD>
void backward_mma(float* dq, float* dk, float* dv, size_t gs, const float* D, const bf16* dout, const bf16* q,
                  const bf16* k, const bf16* v, const float* lse, int B, int T, int H, int KVH, size_t qs, size_t ks,
                  size_t os, cudaStream_t s, const int32_t* start) {
  const size_t rows = (size_t)B * T;
  MT_LAUNCH(zero_rows_kernel, std::min<size_t>(ceil_div(rows * H * HD, 256), 65535), 256, 0, s)(dq, gs, rows, H * HD);
  CUDA_LAUNCH_CHECK();
  constexpr size_t smem = backward_smem_bytes<HD>();
  if (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(attention_backward_mma_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)smem));
  const dim3 grid(ceil_div(T, BKB), KVH, B);
  MT_LAUNCH(attention_backward_mma_kernel<HD>, grid, THREADS, smem, s)(dq, dk, dv, gs, D, dout, q, k, v, lse, T, H, KVH,
                                                                 qs, ks, os, start);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

bool attention_mma_supported(int hd, const void* q, const void* k, const void* v, const void* o, size_t qs, size_t ks,
                             size_t os) {
  const char* mode = std::getenv("MEDITRON_CUDA_ATTENTION");  // read per call: a check can switch between runs
  if (mode != nullptr && std::strcmp(mode, "simple") == 0) return false;
  return (hd == 64 || hd == 128) && qs % 8 == 0 && ks % 8 == 0 && os % 8 == 0 && aligned16(q) && aligned16(k) &&
         aligned16(v) && aligned16(o);
}

void attention_forward_mma(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int H,
                           int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s, const int32_t* start) {
  if (hd == 64) forward_mma<64>(out, lse, q, k, v, B, T, H, KVH, qs, ks, os, s, start);
  else forward_mma<128>(out, lse, q, k, v, B, T, H, KVH, qs, ks, os, s, start);
}

void attention_backward_mma(float* dq, float* dk, float* dv, size_t gs, const float* D, const bf16* dout,
                            const bf16* q, const bf16* k, const bf16* v, const float* lse, int B, int T, int H,
                            int KVH, int hd, size_t qs, size_t ks, size_t os, cudaStream_t s,
                            const int32_t* start) {
  if (hd == 64) backward_mma<64>(dq, dk, dv, gs, D, dout, q, k, v, lse, B, T, H, KVH, qs, ks, os, s, start);
  else backward_mma<128>(dq, dk, dv, gs, D, dout, q, k, v, lse, B, T, H, KVH, qs, ks, os, s, start);
}

}  // namespace mt::cuda
