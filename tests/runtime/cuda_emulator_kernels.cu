// The CUDA emulator's own checks (tests/runtime/cuda_emulator_test.ts compiles this with g++ -xc++ against
// runtime/src/cuda/emulator.cpp): its warp collectives, mma.sync fragments, cp.async timing and launch checks
// against plain references, and that it reports what a GPU would make of a broken kernel (a deadlock, a
// shuffle with an exited lane, a launch over the limits), and the emulated NCCL's checks on a communicator of one
// rank (device memory, overlaps, the stream's device). Prints "PASS name" or "FAIL name: why" per check
// and, with the argument `race`, only the output of a kernel with a missing barrier (the test runs it in both
// MEDITRON_CUDA_EMULATE_ORDER orders and expects them to differ); with `overflow`, a kernel over its stack, which
// must fault on the guard page. Exit status 1 when a check failed.
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/common.cuh"

using mt::cuda::bf16;

namespace {

int failures = 0;
void report(const char* name, bool ok, const std::string& why = "") {
  if (ok) std::printf("PASS %s\n", name);
  else std::printf("FAIL %s: %s\n", name, why.c_str()), failures++;
}

void expect_error(const char* name, const std::string& err, const char* needle) {
  report(name, err.find(needle) != std::string::npos, err.empty() ? "it succeeded" : "message: " + err);
}

// The launch's error (cudaGetLastError) and its message; "" when it succeeded.
std::string launch_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

// ---- warp shuffles: a butterfly sum and a broadcast from lane 5 in every warp ----------------------------------
__global__ void shuffle_kernel(float* sum, int* bcast) {
  const int t = threadIdx.x;
  float v = (float)t;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  sum[t] = v;
  bcast[t] = __shfl_sync(0xffffffffu, t * 10, 5);
}

void check_shuffles() {
  std::vector<float> sum(64);
  std::vector<int> bc(64);
  MT_LAUNCH(shuffle_kernel, 1, 64, 0, nullptr)(sum.data(), bc.data());
  const std::string err = launch_error();
  bool ok = err.empty();
  for (int t = 0; t < 64; t++) {
    const int w = t / 32;
    ok &= sum[t] == (float)(32 * 32 * w + 31 * 32 / 2) && bc[t] == (32 * w + 5) * 10;
  }
  report("warp shuffles: xor butterfly sum and indexed broadcast", ok, err.empty() ? "wrong values" : err);
}

// ---- mma.m16n8k16: each lane loads its fragments by the PTX ISA table, D = A·B + C against a plain product ----
__global__ void mma_kernel(float* d, const bf16* a, const bf16* b, const float* c) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  const auto pair = [](bf16 lo, bf16 hi) {
    uint16_t l, h;
    std::memcpy(&l, &lo, 2), std::memcpy(&h, &hi, 2);
    return (uint32_t)l | ((uint32_t)h << 16);
  };
  // A row-major [16][16], B [16][8] (k × n), C and D [16][8].
  const uint32_t af[4] = {pair(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
                          pair(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
                          pair(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
                          pair(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9])};
  const uint32_t b0 = pair(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]);
  const uint32_t b1 = pair(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
  float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  mt::emu::mma_m16n8k16_bf16(acc, af, b0, b1);
  d[g * 8 + 2 * t] = acc[0], d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2], d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

void check_mma() {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<bf16> a(256), b(128);
  std::vector<float> c(128), d(128, NAN);
  for (auto& x : a) x = __float2bfloat16(nd(rng));
  for (auto& x : b) x = __float2bfloat16(nd(rng));
  for (auto& x : c) x = nd(rng);
  MT_LAUNCH(mma_kernel, 1, 32, 0, nullptr)(d.data(), a.data(), b.data(), c.data());
  const std::string err = launch_error();
  double worst = 0;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 8; j++) {
      double ref = c[i * 8 + j];
      for (int k = 0; k < 16; k++) ref += (double)__bfloat162float(a[i * 16 + k]) * __bfloat162float(b[k * 8 + j]);
      worst = std::max(worst, std::fabs(ref - d[i * 8 + j]));
    }
  report("mma.m16n8k16 bf16: D = A·B + C", err.empty() && worst < 1e-4,
         err.empty() ? "max abs error " + std::to_string(worst) : err);
}

// ---- cp.async: the copy lands at the wait of its group, not before ---------------------------------------------
__global__ void cp_async_kernel(float* before, float* after, const float* src) {
  __shared__ __align__(16) float s[4];
  s[0] = -1;
  mt::emu::cp_async16(s, src, true);
  mt::emu::cp_async_commit();
  before[0] = s[0];
  mt::emu::cp_async_wait(0);
  after[0] = s[0];
}

// Lazy (default): the copy lands at the wait; eager (MEDITRON_CUDA_EMULATE_CPASYNC=eager): at once.
void check_cp_async() {
  const char* mode = std::getenv("MEDITRON_CUDA_EMULATE_CPASYNC");
  const bool eager = mode && std::string(mode) == "eager";
  alignas(16) float src[4] = {42, 43, 44, 45};
  float before = 0, after = 0;
  MT_LAUNCH(cp_async_kernel, 1, 32, 0, nullptr)(&before, &after, src);
  const std::string err = launch_error();
  report(eager ? "cp.async (eager) lands at once" : "cp.async lands at cp.async.wait_group",
         err.empty() && before == (eager ? 42 : -1) && after == 42,
         err.empty() ? "before " + std::to_string(before) + ", after " + std::to_string(after) : err);
}

// ---- memory starts as NaN: static shared memory not yet written, a fresh cudaMalloc ------------------------------
__global__ void unwritten_shared_kernel(float* out) {
  __shared__ float z[32];
  out[threadIdx.x] = z[threadIdx.x];
}

void check_poison() {
  float out[32];
  MT_LAUNCH(unwritten_shared_kernel, 1, 32, 0, nullptr)(out);
  std::string err = launch_error();
  bool ok = err.empty();
  for (float x : out) ok &= std::isnan(x);
  report("static shared memory starts as NaN at a launch", ok, err.empty() ? "a value that is not NaN" : err);
  float* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, 4 * sizeof(float)));
  float h[4] = {0, 0, 0, 0};
  CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
  report("cudaMalloc memory starts as NaN", std::isnan(h[0]) && std::isnan(h[3]));
  // A copy whose kind does not match its pointers fails, as on a GPU.
  const cudaError_t e = cudaMemcpy(h, h + 2, sizeof(float), cudaMemcpyHostToDevice);
  const std::string msg = e == cudaSuccess ? "" : cudaGetErrorString(e);
  cudaGetLastError();
  expect_error("a host-to-device copy into host memory fails", msg, "is host memory");
  CUDA_CHECK(cudaFree(d));
}

// ---- broken kernels: the launch fails with a message naming the problem ---------------------------------------
__global__ void deadlock_kernel(float* out) {
  // Half of warp 1 waits at a shuffle with the other half, which waits at __syncthreads with warp 0: neither
  // can complete (a GPU hangs).
  if (threadIdx.x < 48) __syncthreads();
  else out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// Lane 3 exits: the others' shuffle completes without it, and lane 2, which reads it, gets garbage (NaN).
__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// A block of 48 threads: warp 1 has 16 lanes, a full-mask shuffle among them reads NaN from lanes 16-31.
__global__ void partial_warp_kernel(float* out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 16); }

__global__ void mma_exited_kernel(float* out) {
  if (threadIdx.x == 0) return;
  float c[4] = {0, 0, 0, 0};
  const uint32_t a[4] = {0, 0, 0, 0};
  mt::emu::mma_m16n8k16_bf16(c, a, 0, 0);
  out[threadIdx.x] = c[0];
}

__global__ void smem_kernel(float* out) {
  MT_DYNAMIC_SHARED(float, big);
  big[threadIdx.x] = 1;
  __syncthreads();
  out[threadIdx.x] = big[(threadIdx.x + 1) % blockDim.x];
}


void check_errors() {
  std::vector<float> out(1024);
  MT_LAUNCH(deadlock_kernel, 1, 64, 0, nullptr)(out.data());
  expect_error("a deadlock (warps at different barriers) fails the launch", launch_error(), "deadlock");
  std::fill(out.begin(), out.end(), 0.0f);
  MT_LAUNCH(exited_lane_kernel, 1, 32, 0, nullptr)(out.data());
  std::string err = launch_error();
  report("a shuffle goes on without an exited lane; reading it gives NaN",
         err.empty() && std::isnan(out[2]) && out[0] == 1 && out[31] == 1 && out[3] == 0, err);
  MT_LAUNCH(partial_warp_kernel, 1, 48, 0, nullptr)(out.data());
  err = launch_error();
  report("a partial warp's shuffle reads NaN from the lanes past the block",
         err.empty() && out[0] == 1 && std::isnan(out[32]) && std::isnan(out[47]), err);
  MT_LAUNCH(mma_exited_kernel, 1, 32, 0, nullptr)(out.data());
  expect_error("mma.sync in a warp with an exited lane fails the launch", launch_error(), "exited");
  MT_LAUNCH(smem_kernel, 1, 2048, 0, nullptr)(out.data());
  expect_error("a block of 2048 threads is an invalid configuration", launch_error(), "invalid configuration");
  MT_LAUNCH(smem_kernel, 1, 32, 64 * 1024, nullptr)(out.data());
  expect_error("64 KiB of dynamic shared memory needs cudaFuncSetAttribute", launch_error(),
               "over its limit of 49152");
  CUDA_CHECK(cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
  MT_LAUNCH(smem_kernel, 1, 32, 64 * 1024, nullptr)(out.data());
  err = launch_error();
  report("64 KiB of dynamic shared memory after cudaFuncSetAttribute", err.empty() && out[0] == 1, err);
}

// ---- NCCL (emulator_nccl.cpp, here without MPI: communicators of one rank) and devices -------------------------
std::string nccl_error(ncclResult_t r) { return r == ncclSuccess ? "" : ncclGetErrorString(r); }

void check_nccl() {  // run with MEDITRON_CUDA_EMULATE_GPUS=2
  ncclUniqueId id;
  ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclGetUniqueId(&id));
  ncclUniqueId bad = id;
  bad.internal[0] ^= 1;
  expect_error("an id whose bytes changed is refused", nccl_error(ncclCommInitRank(&comm, 1, bad, 0)),
               "bytes changed");
  expect_error("a group of two needs MPI", nccl_error(ncclCommInitRank(&comm, 2, id, 0)), "without MPI");
  NCCL_CHECK(ncclCommInitRank(&comm, 1, id, 0));
  float* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, 64 * sizeof(float)));
  std::vector<float> h(64);
  for (int i = 0; i < 64; i++) h[i] = (float)i;
  CUDA_CHECK(cudaMemcpy(d, h.data(), sizeof(float) * 64, cudaMemcpyHostToDevice));
  std::string err = nccl_error(ncclAllReduce(d, d + 32, 32, ncclFloat32, ncclSum, comm, nullptr));
  std::vector<float> back(64);
  CUDA_CHECK(cudaMemcpy(back.data(), d, sizeof(float) * 64, cudaMemcpyDeviceToHost));
  report("an all-reduce of one rank copies send to receive", err.empty() && back[32] == 0 && back[63] == 31, err);
  expect_error("an all-reduce of host memory is refused",
               nccl_error(ncclAllReduce(h.data(), h.data(), 8, ncclFloat32, ncclSum, comm, nullptr)),
               "not device memory");
  expect_error("a buffer past its allocation's end is refused",
               nccl_error(ncclAllReduce(d + 60, d + 60, 8, ncclFloat32, ncclSum, comm, nullptr)),
               "not device memory");
  expect_error("an all-reduce over overlapping, different buffers is refused",
               nccl_error(ncclAllReduce(d, d + 4, 8, ncclFloat32, ncclSum, comm, nullptr)), "overlap");
  err = nccl_error(ncclReduceScatter(d, d, 8, ncclFloat32, ncclSum, comm, nullptr));  // rank 0: recv == send
  report("a reduce-scatter in place at this rank's chunk", err.empty(), err);
  expect_error("a reduce-scatter overlapping elsewhere is refused",
               nccl_error(ncclReduceScatter(d, d + 1, 8, ncclFloat32, ncclSum, comm, nullptr)), "overlaps");
  expect_error("an all-gather overlapping elsewhere is refused",
               nccl_error(ncclAllGather(d + 1, d, 8, ncclFloat32, comm, nullptr)), "overlaps");
  NCCL_CHECK(ncclGroupStart());
  const std::string sent = nccl_error(ncclSend(d, 8, ncclFloat32, 0, comm, nullptr));
  err = nccl_error(ncclRecv(d + 4, 8, ncclFloat32, 0, comm, nullptr));
  const std::string in_group = nccl_error(ncclAllReduce(d, d, 8, ncclFloat32, ncclSum, comm, nullptr));
  NCCL_CHECK(ncclGroupEnd());
  expect_error("a receive into a buffer a send of its group reads is refused", sent.empty() ? err : sent, "races");
  expect_error("a collective in a group is refused (not emulated)", in_group, "sends and receives only");
  expect_error("ncclGroupEnd without ncclGroupStart is refused", nccl_error(ncclGroupEnd()), "without");
  cudaStream_t other = nullptr;
  float* d1 = nullptr;
  CUDA_CHECK(cudaSetDevice(1));
  CUDA_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  CUDA_CHECK(cudaMalloc(&d1, 8 * sizeof(float)));
  CUDA_CHECK(cudaSetDevice(0));
  expect_error("a stream of another device is refused",
               nccl_error(ncclAllReduce(d, d, 8, ncclFloat32, ncclSum, comm, other)), "stream is on device 1");
  expect_error("memory of another device is refused",
               nccl_error(ncclAllReduce(d1, d1, 8, ncclFloat32, ncclSum, comm, nullptr)), "memory of device 1");
  CUDA_CHECK(cudaFree(d1));
  expect_error("device 2 of 2 does not exist", cudaSetDevice(2) ? cudaGetErrorString(cudaGetLastError()) : "",
               "has 2");
  CUDA_CHECK(cudaStreamDestroy(other));
  CUDA_CHECK(cudaFree(d));
  NCCL_CHECK(ncclCommDestroy(comm));
}

// ---- a missing barrier: thread 1 reads what thread 0 writes, unordered ---------------------------------------
__global__ void race_kernel(float* out) {
  __shared__ float x;
  if (threadIdx.x == 0) x = 1;
  if (threadIdx.x == 0) x = 7;
  // (no __syncthreads here)
  if (threadIdx.x == 1) out[0] = x;
}

// ---- a thread that overflows its stack: faults on the guard page below it ------------------------------------
// Threads 0 and 2 exit; thread 1 (the middle stack) fills 160 KiB of locals from the top down, past its 128 KiB:
// without a guard page it would write over its neighbour's stack and finish.
__attribute__((noinline)) float fill_160k() {  // its own frame: the others never allocate it
  volatile char big[160 * 1024];
  for (size_t i = sizeof big; i-- > 0;) big[i] = (char)i;
  return big[0] + big[sizeof big - 1];
}
__global__ void overflow_kernel(float* out) {
  if (threadIdx.x == 1) out[1] = fill_160k();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1 && std::string(argv[1]) == "overflow") {
      std::vector<float> out(64);
      MT_LAUNCH(overflow_kernel, 1, 3, 0, nullptr)(out.data());
      std::printf("overflow: no fault\n");
      return 0;
    }
    if (argc > 1 && std::string(argv[1]) == "race") {
      float out = 0;
      MT_LAUNCH(race_kernel, 1, 32, 0, nullptr)(&out);
      CUDA_LAUNCH_CHECK();
      std::printf("race %g\n", out);
      return 0;
    }
    check_shuffles();
    check_mma();
    check_cp_async();
    check_poison();
    check_errors();
    check_nccl();
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    return 1;
  }
  return failures ? 1 : 0;
}
