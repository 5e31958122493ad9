// common.cuh — error checks (CUDA, cuBLAS, NCCL → mt::Error with the call and message), device buffers and
// the bf16 helpers shared by the CUDA backend.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <cstdlib>
#include <utility>

#include "common.hpp"

// Kernel launch and dynamic shared memory, spelled once so that the same sources also build for the CUDA
// emulator (emulator.hpp: MEDITRON_CUDA_EMULATE, the kernels run on the CPU in tests without a GPU):
//   MT_LAUNCH(kernel, grid, block, smem, stream)(args...)  is  kernel<<<grid, block, smem, stream>>>(args...)
//   MT_DYNAMIC_SHARED(T, name);                          is  extern __shared__ __align__(16) T name[];
#ifdef MEDITRON_CUDA_EMULATE
#include "cuda/emulator.hpp"
#define MT_LAUNCH(kernel, grid, block, smem, stream) ::mt::emu::launch(kernel, #kernel, grid, block, smem, stream)
#define MT_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::mt::emu::dynamic_shared())
#else
#define MT_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#define MT_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
#endif

namespace mt::cuda {

using bf16 = __nv_bfloat16;

#define CUDA_CHECK(call)                                                                                       \
  do {                                                                                                         \
    cudaError_t err_ = (call);                                                                                 \
    if (err_ != cudaSuccess)                                                                                   \
      throw ::mt::Error(err_ == cudaErrorMemoryAllocation ? MT_ERR_OUT_OF_MEMORY : MT_ERR_INTERNAL,            \
                        ::mt::format("%s failed: %s (%s:%d)", #call, cudaGetErrorString(err_), __FILE__, __LINE__)); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                                 \
  do {                                                                                                     \
    cublasStatus_t st_ = (call);                                                                           \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                      \
      throw ::mt::Error(MT_ERR_INTERNAL, ::mt::format("%s failed: %s (%s:%d)", #call,                      \
                                                      cublasGetStatusString(st_), __FILE__, __LINE__));    \
  } while (0)

#define NCCL_CHECK(call)                                                                                   \
  do {                                                                                                     \
    ncclResult_t r_ = (call);                                                                              \
    if (r_ != ncclSuccess)                                                                                 \
      throw ::mt::Error(MT_ERR_INTERNAL,                                                                   \
                        ::mt::format("%s failed: %s (%s:%d)", #call, ncclGetErrorString(r_), __FILE__, __LINE__)); \
  } while (0)

// MEDITRON_CUDA_SYNC=1: synchronise after every kernel, so a fault names the launcher that caused it (debugging).
inline bool sync_each_kernel() {
  static const bool on = [] {
    const char* v = std::getenv("MEDITRON_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

// Checks the last kernel launch (bad configuration, missing kernel image for this GPU); with
// MEDITRON_CUDA_SYNC=1 also waits for it and reports a fault at this line.
#define CUDA_LAUNCH_CHECK()                                               \
  do {                                                                    \
    CUDA_CHECK(cudaGetLastError());                                       \
    if (::mt::cuda::sync_each_kernel()) CUDA_CHECK(cudaDeviceSynchronize()); \
  } while (0)

inline unsigned ceil_div(size_t a, size_t b) { return (unsigned)((a + b - 1) / b); }

// An owned device allocation of n elements of T (cudaMalloc; freed on destruction).
template <class T>
struct Buffer {
  T* ptr = nullptr;
  size_t n = 0;
  Buffer() = default;
  explicit Buffer(size_t count) { resize(count); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)), n(std::exchange(o.n, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(ptr, o.ptr);
    std::swap(n, o.n);
    return *this;
  }
  ~Buffer() {
    if (ptr) cudaFree(ptr);
  }
  // Reallocates when the size changes (contents are not kept).
  void resize(size_t count) {
    if (count == n) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    n = 0;
    if (count) CUDA_CHECK(cudaMalloc(&ptr, count * sizeof(T)));
    n = count;
  }
  T* data() const { return ptr; }
  size_t bytes() const { return n * sizeof(T); }
};

#if defined(__CUDACC__) || defined(MEDITRON_CUDA_EMULATE)
// Sum / max of v over the 32 lanes of a warp (every lane gets the result).
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
#endif

}  // namespace mt::cuda
