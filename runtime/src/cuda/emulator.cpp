// emulator.cpp — the CUDA emulator of emulator.hpp: the fiber scheduler that runs a launch's threads, the warp
// collectives, cp.async and mma.sync, and the parts of the CUDA runtime, cuBLAS and NCCL that the backend calls.
#include "cuda/emulator.hpp"

#include "common.hpp"

#include <cblas.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cublas_v2.h>
#include <nccl.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

struct CUstream_st {
  unsigned flags = 0;
  int device = 0;  // the current device when it was created
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

// Per emulated thread: 128 KiB, above a guard page (see Stacks).
constexpr size_t STACK_BYTES = 128 * 1024;
constexpr size_t SMEM_DEFAULT = 48 * 1024, SMEM_OPTIN = 227 * 1024;

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
  size_t pos = 0;  // place in the schedule order (thread index, or reversed)
  std::vector<Copy> open;                 // cp.async issued since the last commit
  std::vector<std::vector<Copy>> groups;  // committed, oldest first
};

// The pending collective of a warp: which one, its mask, the lanes arrived so far and their operands.
enum class Op { Shuffle, Sync, Mma };
struct Warp {
  unsigned arrived = 0, mask = 0;
  unsigned exited = 0;  // lanes that have exited (or do not exist: a partial last warp)
  Op op = Op::Sync;
  Shuffle kind = Shuffle::None;
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
  std::vector<uint64_t> ready;  // bit pos of each Ready fiber (the scheduler takes the lowest)
  std::vector<unsigned char> smem;
  std::string error;
};

void set_state(Block& b, Fiber& f, Fiber::State s) {
  f.state = s;
  const uint64_t bit = uint64_t(1) << (f.pos % 64);
  if (s == Fiber::Ready) b.ready[f.pos / 64] |= bit;
  else b.ready[f.pos / 64] &= ~bit;
}

// One launch runs at a time in the process (run_grid holds launch_mutex), so the running block's state and the
// kernels' __shared__ variables (function statics) need not be per host thread.
std::mutex launch_mutex;
Block* cur_block = nullptr;
Fiber* cur_fiber = nullptr;
Context scheduler;
const std::function<void()>* cur_body = nullptr;
dim3 cur_grid;
// The fibers' stacks: one mapping, each stack above an inaccessible guard page, so a thread that overflows its
// stack faults instead of overwriting another's. Stack i's top is 17·i cache lines below its region's end: tops
// a whole number of pages apart would share cache sets, and every switch would miss.
class Stacks {
  char* base_ = nullptr;
  size_t count_ = 0, page_ = (size_t)sysconf(_SC_PAGESIZE), stride_ = page_ + STACK_BYTES + page_;

 public:
  ~Stacks() {
    if (base_) munmap(base_, count_ * stride_);
  }
  // Fiber i's context on its stack (at least n stacks mapped).
  void make(Context& c, size_t i, size_t n, void (*entry)()) {
    if (count_ < n) {
      if (base_) munmap(base_, count_ * stride_);
      void* p = mmap(nullptr, n * stride_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      base_ = static_cast<char*>(p), count_ = n;
      for (size_t k = 0; k < n; k++) mprotect(base_ + k * stride_, page_, PROT_NONE);
    }
    char* stack = base_ + i * stride_ + page_;
    make_context(c, stack, stride_ - page_ - (i * 17 * 64) % page_, entry);
  }
} stacks;
// MEDITRON_CUDA_EMULATE_ORDER=reverse and MEDITRON_CUDA_EMULATE_CPASYNC=eager, read at every launch.
bool reverse_order = false, eager_copies = false;
bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == value;
}
// Reading a lane that does not take part in a shuffle (outside the mask, exited) gives these bits: NaN as a
// float, -1 as an int (a GPU gives an undefined value).
constexpr uint64_t POISON = ~uint64_t(0);

// Every kernel's static __shared__ variable is in the section mt_emu_shared (emulator.hpp), which the linker
// brackets with these symbols: every block starts with it filled with NaN bytes, as its dynamic shared memory, so
// a read of an element no thread of the block wrote shows (a GPU's shared memory starts undefined), even where
// an earlier block of the launch wrote it. (The section holds every kernel's variables: a few bytes.)
extern "C" char __start_mt_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_mt_emu_shared[] __attribute__((weak, visibility("hidden")));
void poison_static_shared() {
  const auto begin = reinterpret_cast<uintptr_t>(__start_mt_emu_shared);
  const auto end = reinterpret_cast<uintptr_t>(__stop_mt_emu_shared);
  if (begin && end > begin) std::memset(__start_mt_emu_shared, 0xff, end - begin);
}

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
    if (f.state == Fiber::AtBarrier) set_state(b, f, Fiber::Ready);
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

// A shuffle's results: lane l reads lane src(l) when that lane takes part, else POISON. CUDA: __shfl_sync reads
// lane src % 32; __shfl_xor_sync reads lane l ^ m, or l's own value when that is past the warp (m ≥ 32).
void shuffle_release(Warp& w) {
  const unsigned taking_part = w.mask & ~w.exited;
  for (int l = 0; l < 32; l++) {
    if (!(taking_part >> l & 1u)) continue;
    int src = w.kind == Shuffle::Xor ? (l ^ w.arg[l]) : (w.arg[l] & 31);
    if (src >= 32) src = l;
    w.out[l] = (taking_part >> src & 1u) ? w.in[src] : POISON;
  }
}

// Completes the warp's pending collective once every lane of its mask that is still running has arrived (CUDA:
// the non-exited lanes named in the mask must all execute it) and wakes them.
void maybe_release_warp(Block& b, int warp) {
  Warp& w = b.warps[warp];
  if (w.arrived == 0 || w.arrived != (w.mask & ~w.exited)) return;
  if (w.op == Op::Mma) mma_release(w);
  else if (w.op == Op::Shuffle) shuffle_release(w);
  for (int l = 0; l < 32; l++) {
    if (!(w.arrived >> l & 1u)) continue;
    Fiber& f = b.fibers[(size_t)warp * 32 + l];
    if (f.state == Fiber::AtWarp) set_state(b, f, Fiber::Ready);
  }
  w.arrived = 0;
}

// Arrives at the warp's pending collective (deposit: this lane's operands); the last lane to arrive completes it
// for all, the others wait. mma.sync.aligned needs all 32 lanes.
template <class Deposit>
void warp_collective(unsigned mask, Op op, Shuffle kind, Deposit deposit) {
  Block& b = *cur_block;
  Fiber& f = self();
  Warp& w = b.warps[f.warp];
  const char* what = op == Op::Mma ? "mma.sync" : op == Op::Sync ? "__syncwarp" : "__shfl_sync";
  if (!(mask >> f.lane & 1u))
    throw std::runtime_error(format("lane %d of warp %d called %s with a mask (0x%08x) without it", f.lane, f.warp,
                                    what, mask));
  if (op == Op::Mma && w.exited)
    throw std::runtime_error(format("mma.sync in warp %d, whose lanes 0x%08x have exited or do not exist", f.warp,
                                    w.exited));
  if (w.arrived == 0) {
    w.mask = mask, w.op = op, w.kind = kind;
  } else if (w.mask != mask || w.op != op || w.kind != kind) {
    throw std::runtime_error(format("lanes of warp %d are at different warp collectives (%s with mask 0x%08x, "
                                    "and mask 0x%08x)", f.warp, what, mask, w.mask));
  }
  deposit(w, f.lane);
  w.arrived |= 1u << f.lane;
  set_state(b, f, Fiber::AtWarp);
  maybe_release_warp(b, f.warp);
  if (f.state == Fiber::AtWarp) yield();
}

// The end of a thread: its outstanding cp.async land; a pending shuffle of its warp goes on without it (an
// mma.sync cannot).
void finish(Block& b, Fiber& f) {
  for (auto& g : f.groups) perform(g);
  perform(f.open);
  f.groups.clear(), f.open.clear();
  set_state(b, f, Fiber::Done);
  b.live--;
  Warp& w = b.warps[f.warp];
  w.exited |= 1u << f.lane;
  if (w.arrived && (w.mask >> f.lane & 1u)) {
    if (w.op == Op::Mma && b.error.empty())
      b.error = format("lane %d of warp %d has exited while lanes 0x%08x wait for it at mma.sync", f.lane, f.warp,
                       w.arrived);
    else maybe_release_warp(b, f.warp);  // the lanes still running may all be there now
  }
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

// Runs one block to completion (or to its first error). Schedule: always the first ready thread (in thread
// order, or reverse), so a warp runs ahead until it waits at __syncthreads while the others have not started:
// the largest skew between warps, where a missing barrier between them changes what they read.
void run_block(Block& b) {
  const size_t n = b.fibers.size();
  for (size_t i = 0; i < n; i++) stacks.make(b.fibers[i].ctx, i, n, fiber_main);
  std::vector<Fiber*> order(n);  // by schedule position
  for (Fiber& f : b.fibers) order[f.pos] = &f;
  while (b.error.empty()) {
    size_t w = 0;
    while (w < b.ready.size() && b.ready[w] == 0) w++;
    if (w == b.ready.size()) {
      if (b.live > 0) b.error = describe_deadlock(b);
      return;
    }
    cur_fiber = order[w * 64 + (size_t)__builtin_ctzll(b.ready[w])];
    switch_context(scheduler, cur_fiber->ctx);
    cur_fiber = nullptr;
  }
}

std::map<const void*, int>& max_dynamic_smem() {
  static std::map<const void*, int> m;
  return m;
}

// Emulated device memory: allocations by address (under memory_mutex).
struct Allocation {
  size_t bytes;
  int device;  // current at cudaMalloc
};
std::mutex memory_mutex;
std::map<uintptr_t, Allocation>& allocations() {
  static std::map<uintptr_t, Allocation> m;
  return m;
}
size_t allocated = 0;
// The allocation that holds [p, p + bytes), or null (under memory_mutex).
const Allocation* allocation_of(const void* p, size_t bytes = 1) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = allocations().upper_bound(a);
  if (it == allocations().begin()) return nullptr;
  --it;
  const uintptr_t end = it->first + it->second.bytes;
  return a < end && bytes <= end - a ? &it->second : nullptr;
}
bool on_device(const void* p) { return allocation_of(p) != nullptr; }
// A copy's pointers against its kind (a GPU refuses a host pointer where device memory is expected, and the
// reverse); cudaMemcpyDefault takes either.
cudaError_t check_kind(const char* call, void* dst, const void* src, cudaMemcpyKind kind) {
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  const bool dev_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool dev_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const std::lock_guard<std::mutex> lock(memory_mutex);
  if (on_device(dst) != dev_dst || (src && on_device(src) != dev_src))
    return fail(cudaErrorInvalidValue,
                format("%s (kind %d): the destination %p is %s memory and the source %p is %s memory", call, (int)kind,
                       dst, on_device(dst) ? "device" : "host", src, src && on_device(src) ? "device" : "host"));
  return cudaSuccess;
}
size_t memory_total() {
  static const size_t total = [] {
    const char* v = std::getenv("MEDITRON_CUDA_EMULATE_GIB");
    const double gib = v ? std::atof(v) : 16.0;
    return (size_t)((gib > 0 ? gib : 16.0) * (1ull << 30));
  }();
  return total;
}
// Unallocated bytes of the emulated device (under memory_mutex).
size_t memory_free() { return memory_total() - std::min(memory_total(), allocated); }

// MEDITRON_CUDA_EMULATE_GPUS (default 1): how many devices cudaGetDeviceCount reports; 0 when the value is not a
// count in [1, 64]. Each has its own UUID, so ranks on different devices take NCCL (emulator_nccl.cpp).
int device_count() {
  static const int n = [] {
    const char* v = std::getenv("MEDITRON_CUDA_EMULATE_GPUS");
    if (!v) return 1;
    char* end = nullptr;
    const long k = std::strtol(v, &end, 10);
    return end != v && *end == 0 && k >= 1 && k <= 64 ? (int)k : 0;
  }();
  return n;
}
thread_local int current = 0;  // cudaSetDevice's, per host thread as in CUDA

}  // namespace

int device_of(const void* p, size_t bytes) {
  const std::lock_guard<std::mutex> lock(memory_mutex);
  const Allocation* a = allocation_of(p, bytes);
  return a ? a->device : -1;
}
int current_device() { return current; }
int stream_device(cudaStream_t s) { return s ? s->device : current; }

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
  set_state(b, f, Fiber::AtBarrier);
  yield();
}

uint64_t warp_exchange(unsigned mask, uint64_t value, int arg, Shuffle kind) {
  const int lane = self().lane;
  warp_collective(mask, kind == Shuffle::None ? Op::Sync : Op::Shuffle, kind,
                  [&](Warp& w, int l) { w.in[l] = value, w.arg[l] = arg; });
  return cur_block->warps[self().warp].out[lane];
}

void* dynamic_shared() { return cur_block->smem.data(); }

void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  const int lane = self().lane;
  warp_collective(0xffffffffu, Op::Mma, Shuffle::None, [&](Warp& w, int l) {
    std::memcpy(w.a[l], a, sizeof w.a[l]);
    w.b[l][0] = b0, w.b[l][1] = b1;
    std::memcpy(w.c[l], c, sizeof w.c[l]);
  });
  std::memcpy(c, cur_block->warps[self().warp].c[lane], 4 * sizeof(float));
}

void cp_async16(void* dst, const void* src, bool valid) {
  if ((reinterpret_cast<uintptr_t>(dst) | (valid ? reinterpret_cast<uintptr_t>(src) : 0)) & 15u)
    throw std::runtime_error("cp.async of 16 bytes from or to an address that is not 16-byte aligned");
  if (eager_copies) perform({{dst, src, valid}});  // lands at once: a write over data still being read shows
  else self().open.push_back({dst, src, valid});
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
  reverse_order = env_is("MEDITRON_CUDA_EMULATE_ORDER", "reverse");
  eager_copies = env_is("MEDITRON_CUDA_EMULATE_CPASYNC", "eager");
  cur_grid = grid;
  cur_body = &thread;
  const size_t blocks = (size_t)grid.x * grid.y * grid.z;
  for (size_t i = 0; i < blocks; i++) {
    const size_t k = reverse_order ? blocks - 1 - i : i;
    Block b;
    b.idx = {(unsigned)(k % grid.x), (unsigned)(k / grid.x % grid.y), (unsigned)(k / grid.x / grid.y)};
    b.dim = block;
    b.fibers.resize(threads);
    b.ready.assign((threads + 63) / 64, 0);
    for (size_t t = 0; t < threads; t++) {
      Fiber& f = b.fibers[t];
      f.tid = {(unsigned)t, 0, 0}, f.lane = (int)(t % 32), f.warp = (int)(t / 32);
      f.pos = reverse_order ? threads - 1 - t : t;
      set_state(b, f, Fiber::Ready);
    }
    b.warps.resize((threads + 31) / 32);
    if (threads % 32) b.warps.back().exited = ~((1u << (threads % 32)) - 1);  // lanes past the block
    b.live = (int)threads;
    b.smem.assign(smem, 0xff);
    poison_static_shared();
    cur_block = &b;
    run_block(b);
    cur_block = nullptr;
    if (!b.error.empty()) {
      fail(cudaErrorLaunchFailure,
           format("kernel %s, block (%u, %u, %u): %s", name, b.idx.x, b.idx.y, b.idx.z, b.error.c_str()));
      cur_body = nullptr;
      return;
    }
  }
  cur_body = nullptr;
}

}  // namespace mt::emu

// ---- the CUDA runtime API the backend uses -------------------------------------------------------------------
using mt::emu::fail;
using mt::format;

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
  *n = mt::emu::device_count();
  return *n ? cudaSuccess
            : fail(cudaErrorInvalidValue, format("MEDITRON_CUDA_EMULATE_GPUS=%s is not a device count in [1, 64]",
                                                 std::getenv("MEDITRON_CUDA_EMULATE_GPUS")));
}
namespace {
cudaError_t check_device(int d) {
  int n = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&n)) return e;
  if (d >= 0 && d < n) return cudaSuccess;
  return fail(cudaErrorInvalidDevice, format("device %d: the CUDA emulator has %d (MEDITRON_CUDA_EMULATE_GPUS sets "
                                             "the count)", d, n));
}
}  // namespace
cudaError_t cudaSetDevice(int d) {
  if (const cudaError_t e = check_device(d)) return e;
  mt::emu::current = d;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (const cudaError_t e = check_device(d)) return e;
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
  char uuid[17];
  std::snprintf(uuid, sizeof uuid, "meditron-emu-%03d", d);  // one per device: ranks on different ones use NCCL
  std::memcpy(p->uuid.bytes, uuid, 16);
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
  *free = mt::emu::memory_free();
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  const std::lock_guard<std::mutex> lock(mt::emu::memory_mutex);
  *p = nullptr;
  if (bytes > mt::emu::memory_free())
    return fail(cudaErrorMemoryAllocation, "out of memory (the emulated device's MEDITRON_CUDA_EMULATE_GIB)");
  void* q = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!q) return fail(cudaErrorMemoryAllocation, "out of memory");
  std::memset(q, 0xff, bytes);  // fresh device memory holds garbage: NaN here, so a read before a write shows
  mt::emu::allocations()[reinterpret_cast<uintptr_t>(q)] = {bytes, mt::emu::current};
  mt::emu::allocated += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  const std::lock_guard<std::mutex> lock(mt::emu::memory_mutex);
  const auto it = mt::emu::allocations().find(reinterpret_cast<uintptr_t>(p));
  if (it == mt::emu::allocations().end())
    return fail(cudaErrorInvalidValue, format("cudaFree of %p, which cudaMalloc did not return", p));
  mt::emu::allocated -= it->second.bytes;
  mt::emu::allocations().erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (!n) return cudaSuccess;
  if (const cudaError_t e = mt::emu::check_kind("cudaMemcpy", dst, src, kind)) return e;
  std::memmove(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, n, k);
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (width > dpitch || width > spitch)
    return fail(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width over a pitch");
  if (!width || !height) return cudaSuccess;
  if (const cudaError_t e = mt::emu::check_kind("cudaMemcpy2DAsync", dst, src, kind)) return e;
  for (size_t r = 0; r < height; r++)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  if (!n) return cudaSuccess;
  if (const cudaError_t e = mt::emu::check_kind("cudaMemset", p, nullptr, cudaMemcpyHostToDevice)) return e;
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new CUstream_st{flags, mt::emu::current};
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
  // The combinations of CUBLAS_COMPUTE_32F the backend uses: A and B of one type, C of theirs or fp32.
  const bool types_ok = (at == CUDA_R_32F || at == CUDA_R_16BF) && bt == at && (ct == at || ct == CUDA_R_32F);
  const auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T; };
  if (compute != CUBLAS_COMPUTE_32F || !types_ok || !op_ok(ta) || !op_ok(tb)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const std::vector<float> a = widen(A, at, ar, ac, lda), b = widen(B, bt, br, bc, ldb);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  // beta 0: C is not read (it may hold NaN)
  std::vector<float> c = be == 0.0f ? std::vector<float>((size_t)ldc * n) : widen(C, ct, m, n, ldc);
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
