// comm.hpp — the one collective-communication interface of the runtime (DESIGN.md §5): all-reduce,
// reduce-scatter, all-gather, point-to-point, broadcast, barrier. Implementations: SelfComm (a group of one:
// every collective is the identity) and, when built with MPI, MpiComm over an MPI communicator. The CUDA
// backend adds an NCCL implementation behind the same interface.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace mt {

// A pending point-to-point send; wait() blocks until its buffer may be reused.
struct SendHandle {
  virtual ~SendHandle() = default;
  virtual void wait() = 0;
};

struct Comm {
  // Instrumentation for benchmarks: bytes this rank sent, seconds it spent blocked in recv.
  double bytes_sent = 0, recv_wait_s = 0;
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // in place: buf = Σ over ranks (or max)
  virtual void all_reduce_sum(float* buf, size_t n) = 0;
  virtual void all_reduce_sum(double* buf, size_t n) = 0;
  virtual void all_reduce_max(float* buf, size_t n) = 0;
  // in: size()·n values; out: this rank's n-value chunk of the sum
  virtual void reduce_scatter_sum(const float* in, float* out, size_t n) = 0;
  // in: n values; out: size()·n values, rank r's block at r·n
  virtual void all_gather(const float* in, float* out, size_t n) = 0;
  virtual std::unique_ptr<SendHandle> isend(const float* buf, size_t n, int peer, int tag) = 0;
  virtual void recv(float* buf, size_t n, int peer, int tag) = 0;
  virtual void broadcast(float* buf, size_t n, int root) = 0;
  virtual void barrier() = 0;
  // Posts the sends an implementation holds back (NCCL's point-to-point: until the next recv, to pair them in one
  // group, or until this call or the send's wait()); a no-op where isend posts at once.
  virtual void flush() {}
};

// The group of one process.
std::unique_ptr<Comm> make_self_comm();

// World rank/size; world_size() is 1 when MPI is absent or not initialised.
int world_rank();
int world_size();
// Initialises MPI (thread level MULTIPLE or SERIALIZED) once; a no-op outside an MPI launch. Throws when
// a launch asks for more than one rank but the library was built without MPI.
void dist_init();
void dist_finalize();
[[noreturn]] void dist_abort(int code);
bool have_mpi();

// Splits the world into the communicator of the ranks sharing `color` (ordered by `key`).
std::unique_ptr<Comm> split_world(int color, int key);
// The world communicator.
std::unique_ptr<Comm> world_comm();
// The largest point-to-point message tag: MPI_TAG_UB (the standard guarantees only 32767), INT_MAX without MPI.
int max_message_tag();

}  // namespace mt
