// emulator.hpp — the CUDA backend's kernels on the CPU, for testing without a GPU (MEDITRON_CUDA_EMULATE=ON).
//
// The .cu sources compile as C++ with this header (through common.cuh) and link against emulator.cpp instead
// of cudart, cuBLAS and NCCL, so libmeditron's `--device cuda` runs every launcher, kernel, buffer and copy of
// the CUDA backend on the CPU: slowly (one OS thread, tiny shapes only), but with the GPU's execution model:
//   - a launch runs its blocks one after another; the threads of a block are fibers (own stacks) scheduled
//     cooperatively: a thread runs until it waits at __syncthreads, a warp collective (__shfl*_sync,
//     __syncwarp, mma) or cp.async.wait_group, then the first ready thread in order runs, so one warp runs
//     ahead until it waits at a barrier (the largest skew between warps). __shared__ variables are function
//     statics in one section;
//   - a barrier that cannot complete (threads of a block waiting at __syncthreads while others of it wait at a
//     warp collective, lanes of one warp at different collectives), an mma.sync in a warp with an exited lane,
//     or a launch the GPU would refuse (block > 1024 threads, grid y/z > 65535, dynamic shared memory over
//     48 KiB without cudaFuncSetAttribute or over the device's 227 KiB) fails the launch with a message. As on
//     a GPU, __syncthreads counts exited threads as arrived and does not tell its call sites apart;
//   - a shuffle completes when the lanes of its mask that have not exited arrive; reading a lane that does not
//     take part (outside the mask, exited) gives all-ones bits (NaN, -1), where a GPU gives an undefined value;
//   - cp.async copies land at the cp.async.wait_group that waits for their group (the latest moment the PTX
//     memory model allows), so a read before the wait sees the old contents; MEDITRON_CUDA_EMULATE_CPASYNC=
//     eager lands them at once instead (the earliest), so an overwrite of data other warps still read shows;
//   - mma.sync.m16n8k16 (bf16 → fp32) gathers the 32 lanes' fragments and computes with the PTX ISA's
//     fragment layout, independently of the kernels' own comments;
//   - shared memory (static and dynamic, at every block) and cudaMalloc memory start as NaN bytes
//     (0xff): a read of an unwritten element shows;
//   - MEDITRON_CUDA_EMULATE_ORDER=reverse runs the blocks of a launch and the threads of a block in reverse
//     order (a race that a missing barrier leaves unordered shows as a difference between the two orders);
//   - copies check their kind against the pointers (a host pointer where device memory is expected fails).
// Device memory is host memory (cudaMalloc is an aligned malloc, counted against MEDITRON_CUDA_EMULATE_GIB,
// default 16); streams and copies are synchronous; events read the wall clock; cublasGemmEx is OpenBLAS
// sgemm on the bf16 inputs widened to fp32 (exact products, fp32 accumulation, as cuBLAS's CUBLAS_COMPUTE_32F);
// MEDITRON_CUDA_EMULATE_GPUS devices (default 1), each with its own UUID: ranks that share one take the staged
// communicator, ranks on different ones NCCL, which emulator_nccl.cpp emulates over MPI.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <type_traits>

namespace mt::emu {

// For the emulated NCCL (emulator_nccl.cpp): the device of the cudaMalloc allocation that holds [p, p + bytes)
// (-1: none does); the calling thread's current device (cudaSetDevice); the device a stream was created on
// (null: the current one).
int device_of(const void* p, size_t bytes);
int current_device();
int stream_device(cudaStream_t s);

// The running thread's coordinates.
uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
// __syncthreads: waits for every thread of the block that has not exited.
void sync_block();
// A warp collective over the lanes of `mask` (all must call it with the same mask and kind): lane i deposits
// in[i]; when the last lane arrives, out[i] = value[src(i)] for a shuffle; the caller gets out[its lane].
enum class Shuffle { Index, Xor, None };
uint64_t warp_exchange(unsigned mask, uint64_t value, int arg, Shuffle kind);
// The block's dynamic shared memory (the launch's smem bytes, 16-byte aligned).
void* dynamic_shared();
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: c += A·B over the warp's fragments (all 32 lanes).
void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);
// cp.async.cg.shared.global 16 bytes (zero-fill when !valid), cp.async.commit_group, cp.async.wait_group n.
void cp_async16(void* dst, const void* src, bool valid);
void cp_async_commit();
void cp_async_wait(int n);

// Runs `thread` as every thread of every block of the grid (checked as the GPU would check the launch; the
// error, if any, is what the next cudaGetLastError returns).
void run_grid(const void* kernel, const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              const std::function<void()>& thread);

// MT_LAUNCH(kernel, grid, block, smem, stream)(args...): the kernel's parameters convert as a launch's do.
template <class... P>
struct Launch {
  void (*kernel)(P...);
  const char* name;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  void operator()(P... args) const {
    run_grid(reinterpret_cast<const void*>(kernel), name, grid, block, smem, stream, [&] { kernel(args...); });
  }
};
template <class... P>
Launch<P...> launch(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t s) {
  return {kernel, name, grid, block, smem, s};
}

template <class T>
T shuffle(unsigned mask, T v, int arg, Shuffle kind, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  if (width != 32) throw std::invalid_argument("CUDA emulator: shuffles with width != 32 are not emulated");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(mask, bits, arg, kind);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace mt::emu

// ---- the device-side builtins the kernels use ------------------------------------------------------------------
#undef __shared__
#define __shared__ __attribute__((section("mt_emu_shared"))) static
#define threadIdx (::mt::emu::thread_idx())
#define blockIdx (::mt::emu::block_idx())
#define blockDim (::mt::emu::block_dim())
#define gridDim (::mt::emu::grid_dim())

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
// nvcc's cuda_runtime.h has this overload for kernels; the C API takes the function's address.
template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

inline void __syncthreads() { ::mt::emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::mt::emu::warp_exchange(mask, 0, 0, ::mt::emu::Shuffle::None);
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return ::mt::emu::shuffle(mask, v, src, ::mt::emu::Shuffle::Index, width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::mt::emu::shuffle(mask, v, lane_mask, ::mt::emu::Shuffle::Xor, width);
}
// Blocks run one at a time on one OS thread: a read-modify-write is atomic.
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline double atomicAdd(double* p, double v) {
  const double old = *p;
  *p = old + v;
  return old;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
