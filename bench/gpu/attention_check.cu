// bench/gpu/attention_check.cu — the tensor-core attention kernels (attention_mma.cu) against the CUDA-core ones
// (MEDITRON_CUDA_ATTENTION=simple, which gpu.ts `check` validates against the CPU backend), kernel level, on
// random q|k|v in the model's fused layout; then both timed on a Llama-2-7B-shaped layer (the ratio is the
// claim, both measured in this run). Needs only the CUDA driver once built (kernels.cu for the profiling marks
// the launchers make; it links cuBLAS):
//   nvcc -std=c++17 -O3 --use_fast_math -arch=sm_90 -cudart static -Iruntime/include -Iruntime/src \
//     -I<cuda>/include -I<nccl>/include bench/gpu/attention_check.cu runtime/src/cuda/kernels.cu \
//     runtime/src/cuda/attention.cu runtime/src/cuda/attention_mma.cu -L<cuda>/lib -l:libcublas.so.13 \
//     -o runtime/build-cuda/attention_check
// (<cuda>, <nccl>: the directories runtime/cuda_toolchain.sh prints). On the CUDA emulator (no GPU; --small):
//   g++ -std=c++17 -O2 -fno-strict-aliasing -DMEDITRON_CUDA -DMEDITRON_CUDA_EMULATE -Iruntime/include \
//     -Iruntime/src -I<cuda>/include -I<nccl>/include -xc++ bench/gpu/attention_check.cu runtime/src/cuda/kernels.cu \
//     runtime/src/cuda/attention.cu runtime/src/cuda/attention_mma.cu -xnone runtime/src/cuda/emulator.cpp -lopenblas
// Exit status 1 when a comparison fails.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/kernels.cuh"

using mt::cuda::bf16;

namespace {

struct Cfg {
  int B, T, H, KVH, hd;
};

struct Diff {
  double rel = 0, maxabs = 0;
};

Diff diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < a.size(); i++) {
    const double d = (double)a[i] - b[i];
    num += d * d, den += (double)b[i] * b[i], mx = std::max(mx, std::fabs(d));
  }
  return {std::sqrt(num / std::max(den, 1e-30)), mx};
}

template <class T>
std::vector<float> download(const T* p, size_t n) {
  std::vector<T> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; i++) {
    if constexpr (std::is_same_v<T, bf16>) f[i] = __bfloat162float(h[i]);
    else f[i] = h[i];
  }
  return f;
}

struct Run {
  std::vector<float> out, lse, dqkv;
  float ms_fwd = 0, ms_bwd = 0;
};

// One forward + backward on the given device inputs with the attention path chosen by `simple`.
Run run(const Cfg& c, bool simple, const bf16* qkv, const bf16* dout, int reps) {
  if (simple) setenv("MEDITRON_CUDA_ATTENTION", "simple", 1);
  else unsetenv("MEDITRON_CUDA_ATTENTION");
  const size_t N = (size_t)c.B * c.T, qd = (size_t)c.H * c.hd, kvd = (size_t)c.KVH * c.hd, qs = qd + 2 * kvd;
  mt::cuda::Buffer<bf16> out(N * qd);
  mt::cuda::Buffer<float> lse((size_t)c.B * c.H * c.T), D((size_t)c.B * c.H * c.T), dqkv(N * qs);
  CUDA_CHECK(cudaMemset(dqkv.data(), 0xff, dqkv.bytes()));  // NaN everywhere: every written value must be written
  cudaEvent_t e0, e1, e2;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  CUDA_CHECK(cudaEventCreate(&e2));
  Run r;
  for (int it = 0; it <= reps; it++) {  // iteration 0 is the warm-up
    CUDA_CHECK(cudaEventRecord(e0));
    mt::cuda::attention_forward(out.data(), lse.data(), qkv, qkv + qd, qkv + qd + kvd, c.B, c.T, c.H, c.KVH, c.hd, qs,
                                qs, qd, 0);
    CUDA_CHECK(cudaEventRecord(e1));
    float* dq = dqkv.data();
    mt::cuda::attention_backward(dq, dq + qd, dq + qd + kvd, qs, D.data(), dout, qkv, qkv + qd, qkv + qd + kvd,
                                 out.data(), lse.data(), c.B, c.T, c.H, c.KVH, c.hd, qs, qs, qd, 0);
    CUDA_CHECK(cudaEventRecord(e2));
    CUDA_CHECK(cudaEventSynchronize(e2));
    if (it > 0) {
      float a, b;
      CUDA_CHECK(cudaEventElapsedTime(&a, e0, e1));
      CUDA_CHECK(cudaEventElapsedTime(&b, e1, e2));
      r.ms_fwd += a / reps, r.ms_bwd += b / reps;
    }
  }
  r.out = download(out.data(), out.n), r.lse = download(lse.data(), lse.n), r.dqkv = download(dqkv.data(), dqkv.n);
  cudaEventDestroy(e0), cudaEventDestroy(e1), cudaEventDestroy(e2);
  return r;
}

bool check(const Cfg& c, bool timed) {
  const size_t N = (size_t)c.B * c.T, qd = (size_t)c.H * c.hd, kvd = (size_t)c.KVH * c.hd, qs = qd + 2 * kvd;
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<bf16> h_qkv(N * qs), h_do(N * qd);
  for (auto& x : h_qkv) x = __float2bfloat16(nd(rng));
  for (auto& x : h_do) x = __float2bfloat16(nd(rng));
  mt::cuda::Buffer<bf16> qkv(h_qkv.size()), dout(h_do.size());
  CUDA_CHECK(cudaMemcpy(qkv.data(), h_qkv.data(), qkv.bytes(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(dout.data(), h_do.data(), dout.bytes(), cudaMemcpyHostToDevice));
  const int reps = timed ? 5 : 1;
  const Run m = run(c, false, qkv.data(), dout.data(), reps), s = run(c, true, qkv.data(), dout.data(), reps);
  const Diff o = diff(m.out, s.out), l = diff(m.lse, s.lse), g = diff(m.dqkv, s.dqkv);
  bool nan = false;
  for (float x : m.dqkv) nan |= !std::isfinite(x);
  for (float x : m.out) nan |= !std::isfinite(x);
  // Per part of dqkv: dq, dk, dv.
  Diff parts[3];
  for (int p = 0; p < 3; p++) {
    const size_t off = p == 0 ? 0 : p == 1 ? qd : qd + kvd, w = p == 0 ? qd : kvd;
    std::vector<float> a, b;
    for (size_t r = 0; r < N; r++)
      for (size_t i = 0; i < w; i++) a.push_back(m.dqkv[r * qs + off + i]), b.push_back(s.dqkv[r * qs + off + i]);
    parts[p] = diff(a, b);
  }
  // A gradient that is zero in exact arithmetic (T = 1: dq = dk = 0, both paths give rounding noise) has no
  // meaningful relative error: it passes on its absolute size.
  const auto close = [](const Diff& d) { return d.rel < 2e-2 || d.maxabs < 1e-4; };
  const bool ok = !nan && o.rel < 1e-2 && l.maxabs < 1e-2 && close(parts[0]) && close(parts[1]) && close(parts[2]);
  printf("%s B %d T %d H %d KVH %d hd %d: out rel %.2e, lse maxabs %.2e, dq rel %.2e (max %.1e), dk rel %.2e "
         "(max %.1e), dv rel %.2e (max %.1e)%s\n",
         ok ? "PASS" : "FAIL", c.B, c.T, c.H, c.KVH, c.hd, o.rel, l.maxabs, parts[0].rel, parts[0].maxabs, parts[1].rel,
         parts[1].maxabs, parts[2].rel, parts[2].maxabs, nan ? " (non-finite values)" : "");
  if (timed) {
    // Causal attention FLOPs: forward 2 matmuls of 2·T·T/2·hd each per head, backward 5 (2.5×).
    const double f = 2.0 * 2.0 * c.B * c.H * (double)c.T * c.T / 2 * c.hd;
    printf("  timing: forward %.3f ms (%.1f TFLOP/s) vs simple %.3f ms (%.1f), ratio %.1fx; backward %.3f ms "
           "(%.1f TFLOP/s) vs simple %.3f ms (%.1f), ratio %.1fx\n",
           m.ms_fwd, f / m.ms_fwd / 1e9, s.ms_fwd, f / s.ms_fwd / 1e9, s.ms_fwd / m.ms_fwd, m.ms_bwd,
           2.5 * f / m.ms_bwd / 1e9, s.ms_bwd, 2.5 * f / s.ms_bwd / 1e9, s.ms_bwd / m.ms_bwd);
  }
  return ok;
}

}  // namespace

// `attention_check --small`: the comparisons without the timed 7B-shaped layer (for compute-sanitizer).
int main(int argc, char** argv) {
  const bool small = argc > 1 && std::string(argv[1]) == "--small";
  try {
    bool ok = true;
    ok &= check({2, 200, 8, 2, 64}, false);   // GQA 4:1, T not a multiple of any tile
    ok &= check({1, 200, 4, 2, 128}, false);  // GQA 2:1
    ok &= check({2, 128, 4, 4, 128}, false);  // MHA, T a multiple of the tiles
    ok &= check({1, 1, 2, 1, 64}, false);     // one token
    ok &= check({1, 77, 4, 1, 128}, false);   // MQA, T < one tile
    ok &= check({1, 1000, 4, 2, 64}, false);
    if (!small) ok &= check({4, 2048, 32, 32, 128}, true);  // Llama-2-7B layer, micro-batch 4
    printf(ok ? "attention_check: all PASS\n" : "attention_check: FAILED\n");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    fprintf(stderr, "attention_check: %s\n", e.what());
    return 1;
  }
}
