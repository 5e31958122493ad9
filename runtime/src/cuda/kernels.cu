// kernels.cu — see kernels.cuh for the math of each launcher. Row kernels use one warp per row (llm.c style);
// elementwise kernels use one thread per element with a grid-stride loop.
#include <cfloat>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/kernels.cuh"

namespace mt::cuda {

namespace {

constexpr int BLOCK = 256;


unsigned grid_for(size_t n) {
  const size_t blocks = (n + BLOCK - 1) / BLOCK;
  return (unsigned)(blocks < 65535 * 16 ? (blocks ? blocks : 1) : 65535 * 16);
}
// Warps-per-block launch of one warp per row.
unsigned row_grid(int rows) { return ceil_div((size_t)rows, BLOCK / 32); }

__global__ void cast_kernel(bf16* out, const float* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void cast_rows_kernel(bf16* out, size_t os, const float* in, size_t is, int N, int width) {
  const size_t total = (size_t)N * width;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / width, c = e % width;
    out[n * os + c] = __float2bfloat16(in[n * is + c]);
  }
}

__global__ void residual_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void gather_kernel(float* out, const float* in, const int32_t* idx, int rows, int d) {
  const size_t total = (size_t)rows * d;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t r = e / d, c = e % d;
    out[e] = in[(size_t)idx[r] * d + c];
  }
}

__global__ void embedding_forward_kernel(float* out, const int32_t* tokens, const bf16* wte, int N, int d, int v0,
                                         int rows) {
  const size_t total = (size_t)N * d;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / d, c = e % d;
    const int r = tokens[n] - v0;
    out[e] = r >= 0 && r < rows ? __bfloat162float(wte[(size_t)r * d + c]) : 0.0f;
  }
}

__global__ void embedding_backward_kernel(float* dwte, const float* dout, const int32_t* tokens, int N, int d,
                                          int v0, int rows) {
  const size_t total = (size_t)N * d;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / d, c = e % d;
    const int r = tokens[n] - v0;
    if (r >= 0 && r < rows) atomicAdd(dwte + (size_t)r * d + c, dout[e]);
  }
}

// One warp per row.
__global__ void rmsnorm_forward_kernel(bf16* out, float* rstd, const float* x, const bf16* w, int N, int d,
                                       float eps) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* xr = x + (size_t)row * d;
  float ss = 0;
  for (int i = lane; i < d; i += 32) ss += xr[i] * xr[i];
  ss = warp_sum(ss);
  const float r = rsqrtf(ss / d + eps);
  for (int i = lane; i < d; i += 32) out[(size_t)row * d + i] = __float2bfloat16(xr[i] * r * __bfloat162float(w[i]));
  if (lane == 0) rstd[row] = r;
}

// One warp per row; dw partial sums of each block's rows are kept in shared memory, then added atomically.
__global__ void rmsnorm_backward_kernel(float* dx, float* dw, const float* dout, const float* x, const bf16* w,
                                        const float* rstd, int N, int d, bool accumulate) {
  MT_DYNAMIC_SHARED(float, dw_s);  // [d]
  for (int i = threadIdx.x; i < d; i += blockDim.x) dw_s[i] = 0;
  __syncthreads();
  const int warps = blockDim.x / 32, lane = threadIdx.x % 32;
  for (int row = blockIdx.x * warps + threadIdx.x / 32; row < N; row += gridDim.x * warps) {
    const float* xr = x + (size_t)row * d;
    const float* dr = dout + (size_t)row * d;
    const float r = rstd[row];
    float dot = 0;  // Σ_j dout·w·x
    for (int i = lane; i < d; i += 32) dot += dr[i] * __bfloat162float(w[i]) * xr[i];
    dot = warp_sum(dot);
    const float c = r * r * r / d * dot;
    for (int i = lane; i < d; i += 32) {
      const float g = r * dr[i] * __bfloat162float(w[i]) - c * xr[i];
      float* o = dx + (size_t)row * d + i;
      *o = accumulate ? *o + g : g;
      atomicAdd(dw_s + i, dr[i] * xr[i] * r);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < d; i += blockDim.x) atomicAdd(dw + i, dw_s[i]);
}

// The rotation of element pair i of row n: (cos, sin) at the row's position (pos[n], else n mod T).
struct RopeAt {
  size_t n;
  int h, i;
  float c, s;
};
__device__ __forceinline__ RopeAt rope_at(size_t e, const float* cs, const int32_t* pos, int T, int nh, int half) {
  const size_t n = e / ((size_t)nh * half);
  const int h = (int)(e / half % nh), i = (int)(e % half);
  const size_t at = ((size_t)(pos ? pos[n] : (int)(n % T)) * half + i) * 2;
  return {n, h, i, cs[at], cs[at + 1]};
}

// One thread per (row, head, i < hd/2).
__global__ void rope_forward_kernel(bf16* x, const float* cs, const int32_t* pos, int N, int T, int nh, int hd,
                                    size_t stride) {
  const int half = hd / 2;
  const size_t total = (size_t)N * nh * half;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const auto [n, h, i, c, s] = rope_at(e, cs, pos, T, nh, half);
    bf16* p = x + n * stride + (size_t)h * hd;
    const float a = __bfloat162float(p[i]), b = __bfloat162float(p[i + half]);
    p[i] = __float2bfloat16(a * c - b * s);
    p[i + half] = __float2bfloat16(b * c + a * s);
  }
}

__global__ void rope_backward_kernel(bf16* dx, size_t os, const float* dxr, size_t is, const float* cs, int N,
                                     int T, int nh, int hd, const int32_t* pos) {
  const int half = hd / 2;
  const size_t total = (size_t)N * nh * half;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const auto [n, h, i, c, s] = rope_at(e, cs, pos, T, nh, half);
    const float* g = dxr + n * is + (size_t)h * hd;
    bf16* o = dx + n * os + (size_t)h * hd;
    const float a = g[i], b = g[i + half];
    o[i] = __float2bfloat16(a * c + b * s);
    o[i + half] = __float2bfloat16(b * c - a * s);
  }
}

__global__ void swiglu_forward_kernel(bf16* out, const bf16* gu, int N, int F) {
  const size_t total = (size_t)N * F;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / F, i = e % F;
    const float g = __bfloat162float(gu[n * 2 * F + i]), u = __bfloat162float(gu[n * 2 * F + F + i]);
    out[e] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
  }
}

__global__ void swiglu_backward_kernel(bf16* dgu, const bf16* dout, const bf16* gu, int N, int F) {
  const size_t total = (size_t)N * F;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / F, i = e % F;
    const float g = __bfloat162float(gu[n * 2 * F + i]), u = __bfloat162float(gu[n * 2 * F + F + i]);
    const float d = __bfloat162float(dout[e]);
    const float sg = 1.0f / (1.0f + __expf(-g));
    dgu[n * 2 * F + i] = __float2bfloat16(d * u * sg * (1.0f + g * (1.0f - sg)));
    dgu[n * 2 * F + F + i] = __float2bfloat16(d * g * sg);
  }
}

// Columns [0, real) of a row hold real vocabulary ids; the rest is padding.
__device__ __forceinline__ int real_cols(int Vl, int v0, int V) { return max(0, min(Vl, V - v0)); }

__global__ void ce_rowmax_kernel(float* rowmax, const float* logits, int rows, int Vl, int v0, int V) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* l = logits + (size_t)row * Vl;
  float m = -FLT_MAX;
  for (int j = lane; j < real_cols(Vl, v0, V); j += 32) m = fmaxf(m, l[j]);
  m = warp_max(m);
  if (lane == 0) rowmax[row] = m;
}

__global__ void ce_sums_kernel(float* stats, const float* logits, const float* rowmax, const int32_t* targets,
                               int rows, int Vl, int v0, int V) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* l = logits + (size_t)row * Vl;
  const float m = rowmax[row];
  float s = 0;
  for (int j = lane; j < real_cols(Vl, v0, V); j += 32) s += __expf(l[j] - m);
  s = warp_sum(s);
  if (lane == 0) {
    const int t = targets[row] - v0;
    stats[2 * row] = s;
    stats[2 * row + 1] = t >= 0 && t < Vl ? l[t] : 0.0f;
  }
}

__global__ void ce_finish_kernel(bf16* dlogits, double* loss_sum, const float* logits, const float* rowmax,
                                 const float* stats, const int32_t* targets, const float* mask, float denom,
                                 int rows, int Vl, int v0, int V) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float m = rowmax[row], sum = stats[2 * row], mk = mask[row];
  if (lane == 0) atomicAdd(loss_sum, (double)mk * ((double)logf(sum) + m - stats[2 * row + 1]));
  if (!dlogits) return;
  const float* l = logits + (size_t)row * Vl;
  const int real = real_cols(Vl, v0, V), t = targets[row] - v0;
  const float scale = mk / denom, inv = 1.0f / sum;
  for (int j = lane; j < Vl; j += 32) {
    const float p = j < real ? __expf(l[j] - m) * inv : 0.0f;
    dlogits[(size_t)row * Vl + j] = __float2bfloat16((p - (j == t ? 1.0f : 0.0f)) * scale);
  }
}

__global__ void sum_squares_kernel(double* out, const float* g, size_t n) {
  __shared__ double part[BLOCK / 32];
  double s = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    s += (double)g[i] * g[i];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int w = 0; w < BLOCK / 32; w++) t += part[w];
    atomicAdd(out, t);
  }
}

__global__ void adamw_kernel(float* master, bf16* param, const float* grad, float* m, float* v, size_t n,
                             float grad_scale, float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                             float wd) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float g = grad_scale * grad[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi, v[i] = vi;
    float p = master[i];
    p -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p);
    master[i] = p;
    param[i] = __float2bfloat16(p);
  }
}

struct Profile {
  bool on = std::getenv("MEDITRON_CUDA_PROFILE") != nullptr && std::strcmp(std::getenv("MEDITRON_CUDA_PROFILE"), "0");
  std::vector<cudaEvent_t> events;  // a pool: [0, used) recorded since the last flush
  std::vector<Work> kinds;
  size_t used = 0;
  double ms[(int)Work::Kinds] = {};
  ~Profile() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
};
Profile& profile() {
  static Profile p;
  return p;
}

cudaStream_t stream_of(cublasHandle_t h) {
  cudaStream_t s = nullptr;
  CUBLAS_CHECK(cublasGetStream(h, &s));
  return s;
}

}  // namespace

void profile_mark(Work w, cudaStream_t s) {
  Profile& p = profile();
  if (!p.on) return;
  if (p.used == p.events.size()) {
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    p.events.push_back(e), p.kinds.push_back(w);
  }
  CUDA_CHECK(cudaEventRecord(p.events[p.used], s));
  p.kinds[p.used++] = w;
}

void profile_flush() {
  Profile& p = profile();
  if (!p.on || p.used == 0) return;
  for (size_t i = 0; i + 1 < p.used; i++) {
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, p.events[i], p.events[i + 1]));
    p.ms[(int)p.kinds[i]] += t;
  }
  // The last mark opens the next window.
  std::swap(p.events[0], p.events[p.used - 1]);
  p.kinds[0] = p.kinds[p.used - 1];
  p.used = 1;
}

void profile_report(int rank, int steps) {
  Profile& p = profile();
  if (!p.on || steps == 0) return;
  static const char* names[] = {"GEMM (cuBLAS)", "attention", "RMSNorm", "RoPE/SwiGLU/residual/casts",
                                "head cross-entropy", "embedding", "optimizer (AdamW, norms)", "communication",
                                "GPU idle (host sync, launch gaps)"};
  double total = 0;
  for (double v : p.ms) total += v;
  std::fprintf(stderr, "cuda profile, rank %d, %d steps: %.1f ms/step\n", rank, steps, total / steps);
  for (int k = 0; k < (int)Work::Kinds; k++)
    if (p.ms[k] > 0)
      std::fprintf(stderr, "  %-34s %9.2f ms/step  %5.1f%%\n", names[k], p.ms[k] / steps, 100 * p.ms[k] / total);
  for (double& v : p.ms) v = 0;
}

// ---- GEMMs: row-major X[r, c] is column-major Xᵀ with leading dimension c ---------------------------------------
// y = x·Wᵀ:  column-major yᵀ[out, N] = W(ᶜ: in×out, op T)·xᵀ(in×N)
void matmul_forward(cublasHandle_t h, void* y, cudaDataType yt, const bf16* x, const bf16* w, int N, int in,
                    int out, float beta) {
  profile_mark(Work::Gemm, stream_of(h));
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, &alpha, w, CUDA_R_16BF, in, x, CUDA_R_16BF, in,
                            &beta, y, yt, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// dx = dy·W:  column-major dxᵀ[in, N] = Wᶜ(in×out)·dyᵀ(out×N)
void matmul_backward_input(cublasHandle_t h, void* dx, cudaDataType dxt, const bf16* dy, const bf16* w, int N,
                           int in, int out, float beta) {
  profile_mark(Work::Gemm, stream_of(h));
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, &alpha, w, CUDA_R_16BF, in, dy, CUDA_R_16BF,
                            out, &beta, dx, dxt, in, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// dW += dyᵀ·x:  column-major dWᵀ[in, out] += xᵀ(in×N)·dy(N×out, i.e. dyᵀ op T)
void matmul_backward_weight(cublasHandle_t h, float* dw, const bf16* dy, const bf16* x, int N, int in, int out) {
  profile_mark(Work::Gemm, stream_of(h));
  const float alpha = 1.0f, beta = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, &alpha, x, CUDA_R_16BF, in, dy, CUDA_R_16BF, out,
                            &beta, dw, CUDA_R_32F, in, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void cast_to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  if (!n) return;
  MT_LAUNCH(cast_kernel, grid_for(n), BLOCK, 0, s)(out, in, n);
  CUDA_LAUNCH_CHECK();
}

void cast_rows_to_bf16(bf16* out, size_t os, const float* in, size_t is, int N, int width, cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(cast_rows_kernel, grid_for((size_t)N * width), BLOCK, 0, s)(out, os, in, is, N, width);
  CUDA_LAUNCH_CHECK();
}

void residual_add(float* out, const float* a, const float* b, size_t n, cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(residual_kernel, grid_for(n), BLOCK, 0, s)(out, a, b, n);
  CUDA_LAUNCH_CHECK();
}

void gather_rows(float* out, const float* in, const int32_t* idx, int rows, int d, cudaStream_t s) {
  MT_LAUNCH(gather_kernel, grid_for((size_t)rows * d), BLOCK, 0, s)(out, in, idx, rows, d);
  CUDA_LAUNCH_CHECK();
}

void embedding_forward(float* out, const int32_t* tokens, const bf16* wte, int N, int d, int v0, int rows,
                       cudaStream_t s) {
  profile_mark(Work::Embedding, s);
  MT_LAUNCH(embedding_forward_kernel, grid_for((size_t)N * d), BLOCK, 0, s)(out, tokens, wte, N, d, v0, rows);
  CUDA_LAUNCH_CHECK();
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int d, int v0, int rows,
                        cudaStream_t s) {
  profile_mark(Work::Embedding, s);
  MT_LAUNCH(embedding_backward_kernel, grid_for((size_t)N * d), BLOCK, 0, s)(dwte, dout, tokens, N, d, v0, rows);
  CUDA_LAUNCH_CHECK();
}

void rmsnorm_forward(bf16* out, float* rstd, const float* x, const bf16* w, int N, int d, float eps, cudaStream_t s) {
  profile_mark(Work::Norm, s);
  MT_LAUNCH(rmsnorm_forward_kernel, row_grid(N), BLOCK, 0, s)(out, rstd, x, w, N, d, eps);
  CUDA_LAUNCH_CHECK();
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const bf16* w, const float* rstd,
                      int N, int d, bool accumulate_dx, cudaStream_t s) {
  profile_mark(Work::Norm, s);
  // A bounded grid: each block reduces its rows' dw in shared memory first (d floats).
  const unsigned blocks = std::min(row_grid(N), 1024u);
  MT_LAUNCH(rmsnorm_backward_kernel, blocks, BLOCK, (size_t)d * sizeof(float), s)(dx, dw, dout, x, w, rstd, N, d,
                                                                            accumulate_dx);
  CUDA_LAUNCH_CHECK();
}

void rope_forward(bf16* x, const float* cos_sin, const int32_t* pos, int N, int T, int nh, int hd, size_t stride,
                  cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(rope_forward_kernel, grid_for((size_t)N * nh * hd / 2), BLOCK, 0, s)(x, cos_sin, pos, N, T, nh, hd, stride);
  CUDA_LAUNCH_CHECK();
}

void rope_backward(bf16* dx, size_t os, const float* dxr, size_t is, const float* cos_sin, int N, int T, int nh,
                   int hd, cudaStream_t s, const int32_t* pos) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(rope_backward_kernel, grid_for((size_t)N * nh * hd / 2), BLOCK, 0, s)(dx, os, dxr, is, cos_sin, N, T, nh,
                                                                                  hd, pos);
  CUDA_LAUNCH_CHECK();
}

void swiglu_forward(bf16* out, const bf16* gu, int N, int F, cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(swiglu_forward_kernel, grid_for((size_t)N * F), BLOCK, 0, s)(out, gu, N, F);
  CUDA_LAUNCH_CHECK();
}

void swiglu_backward(bf16* dgu, const bf16* dout, const bf16* gu, int N, int F, cudaStream_t s) {
  profile_mark(Work::Elementwise, s);
  MT_LAUNCH(swiglu_backward_kernel, grid_for((size_t)N * F), BLOCK, 0, s)(dgu, dout, gu, N, F);
  CUDA_LAUNCH_CHECK();
}

void ce_rowmax(float* rowmax, const float* logits, int rows, int Vl, int v0, int V, cudaStream_t s) {
  profile_mark(Work::CrossEntropy, s);
  MT_LAUNCH(ce_rowmax_kernel, row_grid(rows), BLOCK, 0, s)(rowmax, logits, rows, Vl, v0, V);
  CUDA_LAUNCH_CHECK();
}

void ce_sums(float* stats, const float* logits, const float* rowmax, const int32_t* targets, int rows, int Vl,
             int v0, int V, cudaStream_t s) {
  profile_mark(Work::CrossEntropy, s);
  MT_LAUNCH(ce_sums_kernel, row_grid(rows), BLOCK, 0, s)(stats, logits, rowmax, targets, rows, Vl, v0, V);
  CUDA_LAUNCH_CHECK();
}

void ce_finish(bf16* dlogits, double* loss_sum, const float* logits, const float* rowmax, const float* stats,
               const int32_t* targets, const float* mask, float denom, int rows, int Vl, int v0, int V,
               cudaStream_t s) {
  profile_mark(Work::CrossEntropy, s);
  MT_LAUNCH(ce_finish_kernel, row_grid(rows), BLOCK, 0, s)(dlogits, loss_sum, logits, rowmax, stats, targets, mask,
                                                          denom, rows, Vl, v0, V);
  CUDA_LAUNCH_CHECK();
}

void sum_squares(double* out, const float* g, size_t n, cudaStream_t s) {
  profile_mark(Work::Optimizer, s);
  if (!n) return;
  MT_LAUNCH(sum_squares_kernel, std::min(grid_for(n), 2048u), BLOCK, 0, s)(out, g, n);
  CUDA_LAUNCH_CHECK();
}

void adamw(float* master, bf16* param, const float* grad, float* m, float* v, size_t n, float grad_scale,
           float lr, float beta1, float beta2, float bc1, float bc2, float eps, float wd, cudaStream_t s) {
  profile_mark(Work::Optimizer, s);
  if (!n) return;
  MT_LAUNCH(adamw_kernel, grid_for(n), BLOCK, 0, s)(master, param, grad, m, v, n, grad_scale, lr, beta1, beta2, bc1,
                                                   bc2, eps, wd);
  CUDA_LAUNCH_CHECK();
}

}  // namespace mt::cuda
