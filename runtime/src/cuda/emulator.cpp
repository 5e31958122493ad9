// emulator.cpp — the CUDA emulator of emulator.hpp: the fiber scheduler that runs a launch's threads, the warp
// collectives, cp.async and mma.sync, and the parts of the CUDA runtime, cuBLAS and NCCL that the backend calls.
#include "cuda/emulator.hpp"

#include <cblas.h>
#include <cublas_v2.h>
#include <nccl.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

struct CUstream_st {
  unsigned flags = 0;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};
struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace mt::emu {
namespace {

// Per emulated thread. Not a power of two: stacks 128 KiB apart would put every thread's top of stack in the same
// cache sets, and each switch would miss.
constexpr size_t STACK_BYTES = 128 * 1024 + 17 * 64;
constexpr size_t SMEM_DEFAULT = 48 * 1024, SMEM_OPTIN = 227 * 1024;

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// A failed launch or API call: what cudaGetLastError returns next, and the message cudaGetErrorString gives.
thread_local cudaError_t last_error = cudaSuccess;
thread_local std::string last_message;
cudaError_t fail(cudaError_t e, std::string message) {
  last_error = e;
  last_message = std::move(message);
  return e;
}

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};

// Switching between the scheduler and a thread's fiber. x86-64: the callee-saved registers pushed on the old
// stack, the stack pointer swapped (no system call, unlike swapcontext, which also saves the signal mask).
#if defined(__x86_64__)
extern "C" void mt_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl mt_emu_switch
  .hidden mt_emu_switch
  .type mt_emu_switch, @function
mt_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size mt_emu_switch, .-mt_emu_switch
)");
struct Context {
  void* sp = nullptr;
};
// A fresh stack whose first switch "returns" into entry (16-byte alignment as at a function's entry).
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                           // entry's return address: never used
  *--sp = reinterpret_cast<void*>(entry);    // where the switch's ret goes
  for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
  c.sp = sp;
}
void switch_context(Context& from, Context& to) { mt_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

struct Fiber {
  Context ctx;
  uint3 tid{};
  int lane = 0, warp = 0;
  enum State { Ready, AtBarrier, AtWarp, Done } state = Ready;
  std::vector<Copy> open;                 // cp.async issued since the last commit
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
};

struct Warp {
  unsigned arrived = 0, mask = 0;  // lanes arrived at the pending collective, and its mask
  Shuffle kind = Shuffle::None;
  bool mma = false;
  uint64_t in[32] = {}, out[32] = {};
  int arg[32] = {};
  uint32_t a[32][4] = {}, b[32][2] = {};
  float c[32][4] = {};
};

struct Block {
  uint3 idx{};
  dim3 dim;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  int live = 0, arrived = 0;  // threads not exited; threads waiting at __syncthreads
  std::vector<unsigned char> smem;
  std::string error;
};

// One launch runs at a time in the process (run_grid holds launch_mutex), so the running block's state and the
// kernels' __shared__ variables (function statics) need not be per host thread.
std::mutex launch_mutex;
Block* cur_block = nullptr;
Fiber* cur_fiber = nullptr;
Context scheduler;
const std::function<void()>* cur_body = nullptr;
dim3 cur_grid;
std::vector<char> stacks;
const bool reverse_order = [] {
  const char* v = std::getenv("MEDITRON_CUDA_EMULATE_ORDER");
  return v != nullptr && std::string(v) == "reverse";
}();

Fiber& self() {
  if (!cur_fiber) throw std::logic_error("CUDA emulator: a device builtin was called outside a kernel");
  return *cur_fiber;
}

void yield() { switch_context(cur_fiber->ctx, scheduler); }

void perform(const std::vector<Copy>& copies) {
  for (const Copy& c : copies) {
    if (c.valid) std::memcpy(c.dst, c.src, 16);
    else std::memset(c.dst, 0, 16);
  }
}

// Releases the threads waiting at __syncthreads once every live thread has arrived.
void maybe_release_barrier(Block& b) {
  if (b.arrived == 0 || b.arrived < b.live) return;
  b.arrived = 0;
  for (Fiber& f : b.fibers)
    if (f.state == Fiber::AtBarrier) f.state = Fiber::Ready;
}

// The end of a thread: its outstanding cp.async land; a warp collective it belongs to can no longer complete.
void finish(Block& b, Fiber& f) {
  for (auto& g : f.groups) perform(g);
  perform(f.open);
  f.groups.clear(), f.open.clear();
  f.state = Fiber::Done;
  b.live--;
  const Warp& w = b.warps[f.warp];
  if (w.arrived && (w.mask >> f.lane & 1u) && b.error.empty())
    b.error = format("lane %d of warp %d has exited while lanes 0x%08x wait for it at a warp collective (mask 0x%08x)",
                     f.lane, f.warp, w.arrived, w.mask);
  maybe_release_barrier(b);
}

void fiber_main() {
  Block& b = *cur_block;
  Fiber& f = *cur_fiber;
  try {
    (*cur_body)();
  } catch (const std::exception& e) {
    if (b.error.empty()) b.error = format("thread %u: %s", f.tid.x, e.what());
  }
  finish(b, f);
  switch_context(f.ctx, scheduler);  // never resumed
  std::abort();
}

// mma.m16n8k16 with the PTX ISA's fragment layout (groupID g = lane/4, threadID_in_group t = lane%4):
//   A (row-major 16×16): a_i, i = 0..7 (two bf16 per register, lower index in the low half):
//        row = g for i ∈ {0,1,4,5}, g+8 otherwise;   col = 2t + (i&1) for i < 4, 2t + (i&1) + 8 for i ≥ 4
//   B (16×8, "col"): b_i, i = 0..3: row = 2t + (i&1) for i < 2, 2t + (i&1) + 8 for i ≥ 2; col = g
//   C, D (16×8 fp32): c_i, i = 0..3: row = g for i < 2, g+8 otherwise; col = 2t + (i&1)
float bf16_bits(uint32_t reg, int half) {
  const uint32_t bits = (half ? reg >> 16 : reg & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void mma_release(Warp& w) {
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 8; i++) {
      const int row = (i % 4 < 2) ? g : g + 8, col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
      A[row][col] = bf16_bits(w.a[lane][i / 2], i & 1);
    }
    for (int i = 0; i < 4; i++) B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g] = bf16_bits(w.b[lane][i / 2], i & 1);
    for (int i = 0; i < 4; i++) C[i < 2 ? g : g + 8][2 * t + (i & 1)] = w.c[lane][i];
  }
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; i++) {
      const int row = i < 2 ? g : g + 8, col = 2 * t + (i & 1);
      float acc = C[row][col];
      for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
      w.c[lane][i] = acc;
    }
  }
}

// Arrives at the warp's pending collective; the last lane computes it for all (release), the others wait.
template <class Deposit, class Release>
void warp_collective(unsigned mask, Shuffle kind, bool mma, Deposit deposit, Release release) {
  Block& b = *cur_block;
  Fiber& f = self();
  Warp& w = b.warps[f.warp];
  const char* what = mma ? "mma.sync" : kind == Shuffle::None ? "__syncwarp" : "__shfl_sync";
  if (!(mask >> f.lane & 1u))
    throw std::runtime_error(format("lane %d of warp %d called %s with a mask (0x%08x) without it", f.lane, f.warp,
                                    what, mask));
  if (w.arrived == 0) {
    for (int l = 0; l < 32; l++) {
      if (!(mask >> l & 1u)) continue;
      const size_t t = (size_t)f.warp * 32 + l;
      if (t >= b.fibers.size() || b.fibers[t].state == Fiber::Done)
        throw std::runtime_error(format("%s with mask 0x%08x: lane %d of warp %d %s", what, mask, l, f.warp,
                                        t >= b.fibers.size() ? "does not exist" : "has exited"));
    }
    w.mask = mask, w.kind = kind, w.mma = mma;
  } else if (w.mask != mask || w.kind != kind || w.mma != mma) {
    throw std::runtime_error(format("lanes of warp %d are at different warp collectives (%s with mask 0x%08x, "
                                    "and mask 0x%08x)", f.warp, what, mask, w.mask));
  }
  deposit(w, f.lane);
  w.arrived |= 1u << f.lane;
  if (w.arrived == w.mask) {
    release(w);
    w.arrived = 0;
    for (int l = 0; l < 32; l++) {
      const size_t t = (size_t)f.warp * 32 + l;
      if ((mask >> l & 1u) && b.fibers[t].state == Fiber::AtWarp) b.fibers[t].state = Fiber::Ready;
    }
    return;
  }
  f.state = Fiber::AtWarp;
  yield();
}

std::string describe_deadlock(const Block& b) {
  int at_barrier = 0;
  std::string warps;
  for (const Fiber& f : b.fibers) at_barrier += f.state == Fiber::AtBarrier;
  for (size_t i = 0; i < b.warps.size(); i++)
    if (b.warps[i].arrived)
      warps += format("; warp %zu: lanes 0x%08x of mask 0x%08x at a collective", i, b.warps[i].arrived,
                      b.warps[i].mask);
  return format("deadlock: %d of %d live threads wait at __syncthreads%s", at_barrier, b.live, warps.c_str());
}

// Runs one block to completion (or to its first error).
void run_block(Block& b) {
  const size_t n = b.fibers.size();
  if (stacks.size() < n * STACK_BYTES) stacks.resize(n * STACK_BYTES);
  for (size_t i = 0; i < n; i++) {
    make_context(b.fibers[i].ctx, stacks.data() + i * STACK_BYTES, STACK_BYTES, fiber_main);
  }
  for (;;) {
    bool ran = false, done = true;
    for (size_t k = 0; k < n && b.error.empty(); k++) {
      Fiber& f = b.fibers[reverse_order ? n - 1 - k : k];
      if (f.state == Fiber::Done) continue;
      done = false;
      if (f.state != Fiber::Ready) continue;
      cur_fiber = &f;
      switch_context(scheduler, f.ctx);
      cur_fiber = nullptr;
      ran = true;
    }
    if (!b.error.empty() || done) return;
    if (!ran) {
      b.error = describe_deadlock(b);
      return;
    }
  }
}

std::map<const void*, int>& max_dynamic_smem() {
  static std::map<const void*, int> m;
  return m;
}

// Emulated device memory: allocations and their sizes (under memory_mutex).
std::mutex memory_mutex;
std::map<void*, size_t>& allocations() {
  static std::map<void*, size_t> m;
  return m;
}
size_t allocated = 0;
size_t memory_total() {
  static const size_t total = [] {
    const char* v = std::getenv("MEDITRON_CUDA_EMULATE_GIB");
    const double gib = v ? std::atof(v) : 16.0;
    return (size_t)((gib > 0 ? gib : 16.0) * (1ull << 30));
  }();
  return total;
}

}  // namespace

uint3 thread_idx() { return self().tid; }
uint3 block_idx() { return cur_block->idx; }
dim3 block_dim() { return cur_block->dim; }
dim3 grid_dim() { return cur_grid; }

void sync_block() {
  Block& b = *cur_block;
  Fiber& f = self();
  b.arrived++;
  if (b.arrived == b.live) {
    maybe_release_barrier(b);
    return;
  }
  f.state = Fiber::AtBarrier;
  yield();
}

uint64_t warp_exchange(unsigned mask, uint64_t value, int arg, Shuffle kind) {
  const int lane = self().lane;
  warp_collective(
      mask, kind, false,
      [&](Warp& w, int l) { w.in[l] = value, w.arg[l] = arg; },
      [&](Warp& w) {
        for (int l = 0; l < 32; l++) {
          if (!(w.mask >> l & 1u)) continue;
          const int src = (kind == Shuffle::Xor ? (l ^ w.arg[l]) : w.arg[l]) & 31;
          // A source lane outside the mask reads an unspecified value on the GPU: the lane's own here.
          w.out[l] = (w.mask >> src & 1u) ? w.in[src] : w.in[l];
        }
      });
  return cur_block->warps[self().warp].out[lane];
}

void* dynamic_shared() { return cur_block->smem.data(); }

void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  const int lane = self().lane;
  warp_collective(
      0xffffffffu, Shuffle::None, true,
      [&](Warp& w, int l) {
        std::memcpy(w.a[l], a, sizeof w.a[l]);
        w.b[l][0] = b0, w.b[l][1] = b1;
        std::memcpy(w.c[l], c, sizeof w.c[l]);
      },
      mma_release);
  std::memcpy(c, cur_block->warps[self().warp].c[lane], 4 * sizeof(float));
}

void cp_async16(void* dst, const void* src, bool valid) {
  if ((reinterpret_cast<uintptr_t>(dst) | (valid ? reinterpret_cast<uintptr_t>(src) : 0)) & 15u)
    throw std::runtime_error("cp.async of 16 bytes from or to an address that is not 16-byte aligned");
  self().open.push_back({dst, src, valid});
}
void cp_async_commit() {
  Fiber& f = self();
  f.groups.push_back(std::move(f.open));
  f.open.clear();
}
void cp_async_wait(int n) {
  Fiber& f = self();
  while ((int)f.groups.size() > n) {
    perform(f.groups.front());
    f.groups.erase(f.groups.begin());
  }
}

void run_grid(const void* kernel, const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t,
              const std::function<void()>& thread) {
  const std::lock_guard<std::mutex> lock(launch_mutex);
  const size_t threads = (size_t)block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration,
         format("launch of %s with grid (%u, %u, %u) and block (%u, %u, %u): invalid configuration argument", name,
                grid.x, grid.y, grid.z, block.x, block.y, block.z));
    return;
  }
  const auto opt = max_dynamic_smem().find(kernel);
  const size_t limit = opt == max_dynamic_smem().end() ? SMEM_DEFAULT : (size_t)opt->second;
  if (smem > limit) {
    fail(cudaErrorInvalidValue, format("launch of %s with %zu bytes of dynamic shared memory, over its limit of %zu "
                                       "(cudaFuncAttributeMaxDynamicSharedMemorySize)", name, smem, limit));
    return;
  }
  if (block.y != 1 || block.z != 1) {
    fail(cudaErrorNotSupported, format("launch of %s: the CUDA emulator runs one-dimensional blocks only", name));
    return;
  }
  cur_grid = grid;
  cur_body = &thread;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        Block b;
        b.idx = {x, y, z};
        b.dim = block;
        b.fibers.resize(threads);
        for (size_t i = 0; i < threads; i++) b.fibers[i].tid = {(unsigned)i, 0, 0}, b.fibers[i].lane = i % 32,
                                             b.fibers[i].warp = (int)(i / 32);
        b.warps.resize((threads + 31) / 32);
        b.live = (int)threads;
        b.smem.assign(smem, 0xff);
        cur_block = &b;
        run_block(b);
        cur_block = nullptr;
        if (!b.error.empty()) {
          fail(cudaErrorLaunchFailure, format("kernel %s, block (%u, %u, %u): %s", name, x, y, z, b.error.c_str()));
          cur_body = nullptr;
          return;
        }
      }
  cur_body = nullptr;
}

}  // namespace mt::emu

// ---- the CUDA runtime API the backend uses -------------------------------------------------------------------
using mt::emu::fail;
using mt::emu::format;

extern "C" {

cudaError_t cudaGetLastError() {
  const cudaError_t e = mt::emu::last_error;
  mt::emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return mt::emu::last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaSuccess) return "no error";
  static thread_local std::string s;
  s = mt::emu::last_message.empty() ? format("CUDA emulator error %d", (int)e) : mt::emu::last_message;
  return s.c_str();
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaErrorUnknown";
  }
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, format("device %d: the CUDA emulator has one", d));
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return fail(cudaErrorInvalidDevice, format("device %d: the CUDA emulator has one", d));
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
  std::memcpy(p->uuid.bytes, "meditron-emu-gpu", 16);
  p->totalGlobalMem = mt::emu::memory_total();
  p->sharedMemPerBlock = mt::emu::SMEM_DEFAULT;
  p->sharedMemPerBlockOptin = mt::emu::SMEM_OPTIN;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->multiProcessorCount = 1;
  p->major = 9, p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  const std::lock_guard<std::mutex> lock(mt::emu::memory_mutex);
  *total = mt::emu::memory_total();
  *free = *total - std::min(*total, mt::emu::allocated);
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  const std::lock_guard<std::mutex> lock(mt::emu::memory_mutex);
  *p = nullptr;
  if (bytes > mt::emu::memory_total() - std::min(mt::emu::memory_total(), mt::emu::allocated))
    return fail(cudaErrorMemoryAllocation, "out of memory (the emulated device's MEDITRON_CUDA_EMULATE_GIB)");
  void* q = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!q) return fail(cudaErrorMemoryAllocation, "out of memory");
  std::memset(q, 0xff, bytes);  // fresh device memory holds garbage: NaN here, so a read before a write shows
  mt::emu::allocations()[q] = bytes;
  mt::emu::allocated += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  const std::lock_guard<std::mutex> lock(mt::emu::memory_mutex);
  const auto it = mt::emu::allocations().find(p);
  if (it == mt::emu::allocations().end())
    return fail(cudaErrorInvalidValue, format("cudaFree of %p, which cudaMalloc did not return", p));
  mt::emu::allocated -= it->second;
  mt::emu::allocations().erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, n, k);
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind, cudaStream_t) {
  if (width > dpitch || width > spitch)
    return fail(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width over a pitch");
  for (size_t r = 0; r < height; r++)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->at = std::chrono::steady_clock::now(), e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime of an unrecorded event");
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* f, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return fail(cudaErrorNotSupported, "cudaFuncSetAttribute: only the dynamic shared memory limit is emulated");
  if (value < 0 || (size_t)value > mt::emu::SMEM_OPTIN)
    return fail(cudaErrorInvalidValue, format("cudaFuncSetAttribute: %d bytes of dynamic shared memory is over the "
                                              "device's %zu", value, mt::emu::SMEM_OPTIN));
  const std::lock_guard<std::mutex> lock(mt::emu::launch_mutex);
  mt::emu::max_dynamic_smem()[f] = value;
  return cudaSuccess;
}

// ---- cuBLAS: the handle and GemmEx ------------------------------------------------------------------------------
cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t h, cudaStream_t* s) {
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_INTERNAL_ERROR";
  }
}

}  // extern "C"

namespace {
// A column-major matrix of `rows` × `cols` with leading dimension ld, widened to fp32 (fp32 or bf16 storage).
std::vector<float> widen(const void* p, cudaDataType t, int rows, int cols, int ld) {
  std::vector<float> out((size_t)ld * cols);
  for (int c = 0; c < cols; c++)
    for (int r = 0; r < rows; r++) {
      const size_t i = (size_t)c * ld + r;
      out[i] = t == CUDA_R_32F ? static_cast<const float*>(p)[i]
                               : __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    }
  return out;
}
}  // namespace

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                       int k, const void* alpha, const void* A, cudaDataType at, int lda,
                                       const void* B, cudaDataType bt, int ldb, const void* beta, void* C,
                                       cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t) {
  const auto type_ok = [](cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF; };
  const auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T; };
  if (compute != CUBLAS_COMPUTE_32F || !type_ok(at) || !type_ok(bt) || !type_ok(ct) || !op_ok(ta) || !op_ok(tb))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const std::vector<float> a = widen(A, at, ar, ac, lda), b = widen(B, bt, br, bc, ldb);
  std::vector<float> c = widen(C, ct, m, n, ldc);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  if (be == 0.0f) std::fill(c.begin(), c.end(), 0.0f);  // beta 0: C is not read (it may hold NaN)
  const auto op = [](cublasOperation_t o) { return o == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; };
  cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, al, a.data(), lda, b.data(), ldb, be, c.data(), ldc);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      const size_t x = (size_t)j * ldc + i;
      if (ct == CUDA_R_32F) static_cast<float*>(C)[x] = c[x];
      else static_cast<__nv_bfloat16*>(C)[x] = __float2bfloat16(c[x]);
    }
  return CUBLAS_STATUS_SUCCESS;
}

// ---- NCCL: not emulated (the emulated GPU is shared by every rank, so the backend stages through MPI) ---------
extern "C" {
#define MT_EMU_NO_NCCL return ncclInvalidUsage
ncclResult_t ncclGetUniqueId(ncclUniqueId*) { MT_EMU_NO_NCCL; }
ncclResult_t ncclCommInitRank(ncclComm_t*, int, ncclUniqueId, int) { MT_EMU_NO_NCCL; }
ncclResult_t ncclCommDestroy(ncclComm_t) { MT_EMU_NO_NCCL; }
ncclResult_t ncclAllReduce(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
  MT_EMU_NO_NCCL;
}
ncclResult_t ncclBroadcast(const void*, void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
  MT_EMU_NO_NCCL;
}
ncclResult_t ncclReduceScatter(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
  MT_EMU_NO_NCCL;
}
ncclResult_t ncclAllGather(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) { MT_EMU_NO_NCCL; }
ncclResult_t ncclSend(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) { MT_EMU_NO_NCCL; }
ncclResult_t ncclRecv(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) { MT_EMU_NO_NCCL; }
#undef MT_EMU_NO_NCCL
const char* ncclGetErrorString(ncclResult_t r) {
  return r == ncclSuccess ? "no error"
                          : "NCCL is not part of the CUDA emulator (its ranks share one emulated GPU and use the "
                            "staged communicator)";
}
}  // extern "C"
