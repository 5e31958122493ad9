// comm.cpp — SelfComm and the MPI implementation of Comm.
#include "comm.hpp"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common.hpp"

#ifdef MEDITRON_MPI
#include <dlfcn.h>
#include <mpi.h>
#endif

namespace mt {

namespace {

struct SelfSend : SendHandle {
  void wait() override {}
};

struct SelfComm : Comm {
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void all_reduce_max(float*, size_t) override {}
  void reduce_scatter_sum(const float* in, float* out, size_t n) override {
    if (in != out) std::memmove(out, in, n * sizeof(float));
  }
  void all_gather(const float* in, float* out, size_t n) override {
    if (in != out) std::memmove(out, in, n * sizeof(float));
  }
  std::unique_ptr<SendHandle> isend(const float*, size_t, int, int) override {
    throw Error(MT_ERR_INTERNAL, "send on a group of one");
  }
  void recv(float*, size_t, int, int) override { throw Error(MT_ERR_INTERNAL, "recv on a group of one"); }
  void broadcast(float*, size_t, int) override {}
  void barrier() override {}
};

// Size of an MPI/Slurm launch as seen in the environment (1 when not launched by one).
int launch_size_from_env() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 1;
}

std::once_flag g_init_once;
bool g_mpi_active = false;

}  // namespace

std::unique_ptr<Comm> make_self_comm() { return std::make_unique<SelfComm>(); }

#ifdef MEDITRON_MPI

namespace {

// MPI counts are int: split large transfers into chunks of at most 2^30 elements.
constexpr size_t CHUNK = size_t(1) << 30;

void check_mpi(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(MT_ERR_INTERNAL, format("%s failed: %.*s", what, len, msg));
  }
}

struct MpiSend : SendHandle {
  std::vector<MPI_Request> reqs;
  void wait() override {
    if (!reqs.empty()) check_mpi(MPI_Waitall((int)reqs.size(), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    reqs.clear();
  }
  ~MpiSend() override {
    try {
      wait();
    } catch (...) {
    }
  }
};

struct MpiComm : Comm {
  MPI_Comm comm;
  int rank_ = 0, size_ = 1;
  explicit MpiComm(MPI_Comm c) : comm(c) {
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
  }
  ~MpiComm() override {
    if (comm != MPI_COMM_WORLD && comm != MPI_COMM_NULL) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Comm_free(&comm);
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  template <class T>
  void allreduce(T* buf, size_t n, MPI_Datatype type, MPI_Op op) {
    for (size_t off = 0; off < n; off += CHUNK)
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)std::min(CHUNK, n - off), type, op, comm),
                "MPI_Allreduce");
    bytes_sent += 2.0 * (size_ - 1) / size_ * n * sizeof(T);  // counted at the ring volume
  }
  // Ring all-reduce (reduce-scatter, then all-gather) for large float buffers: 2(p−1)/p·n values sent per
  // rank, every chunk reduced on one rank in a fixed order, so all ranks end with identical bits.
  void ring_all_reduce(float* buf, size_t n) {
    const int p = size_;
    std::vector<size_t> start(p + 1);
    for (int c = 0; c <= p; c++) start[c] = n * c / p;
    std::vector<float> tmp;
    const int next = (rank_ + 1) % p, prev = (rank_ + p - 1) % p;
    auto exchange = [&](int send_c, int recv_c, float* into) {
      const size_t sn = start[send_c + 1] - start[send_c], rn = start[recv_c + 1] - start[recv_c];
      MT_CHECK(sn <= CHUNK && rn <= CHUNK, "ring chunk too large");
      check_mpi(MPI_Sendrecv(buf + start[send_c], (int)sn, MPI_FLOAT, next, 77, into, (int)rn, MPI_FLOAT, prev, 77,
                             comm, MPI_STATUS_IGNORE),
                "MPI_Sendrecv");
      bytes_sent += sn * sizeof(float);
    };
    for (int s = 0; s < p - 1; s++) {  // reduce-scatter: after p−1 steps rank r holds the sum of chunk r+1
      const int send_c = (rank_ - s + p) % p, recv_c = (rank_ - s - 1 + p) % p;
      tmp.resize(start[recv_c + 1] - start[recv_c]);
      exchange(send_c, recv_c, tmp.data());
      float* dst = buf + start[recv_c];
      for (size_t i = 0; i < tmp.size(); i++) dst[i] += tmp[i];
    }
    for (int s = 0; s < p - 1; s++) {  // all-gather the reduced chunks
      const int send_c = (rank_ + 1 - s + p) % p, recv_c = (rank_ - s + p) % p;
      exchange(send_c, recv_c, buf + start[recv_c]);
    }
  }
  void all_reduce_sum(float* buf, size_t n) override {
    if (size_ > 1 && n >= (size_t)size_ * 1024) ring_all_reduce(buf, n);
    else allreduce(buf, n, MPI_FLOAT, MPI_SUM);
  }
  void all_reduce_sum(double* buf, size_t n) override { allreduce(buf, n, MPI_DOUBLE, MPI_SUM); }
  void all_reduce_max(float* buf, size_t n) override { allreduce(buf, n, MPI_FLOAT, MPI_MAX); }
  void reduce_scatter_sum(const float* in, float* out, size_t n) override {
    MT_CHECK(n <= CHUNK, "reduce-scatter block of %zu floats is too large", n);
    check_mpi(MPI_Reduce_scatter_block(in, out, (int)n, MPI_FLOAT, MPI_SUM, comm), "MPI_Reduce_scatter_block");
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);  // counted at the ring volume
  }
  void all_gather(const float* in, float* out, size_t n) override {
    MT_CHECK(n <= CHUNK, "all-gather block of %zu floats is too large", n);
    const void* send = in == out + (size_t)rank_ * n ? MPI_IN_PLACE : in;  // in-place gather of our own block
    check_mpi(MPI_Allgather(send, (int)n, MPI_FLOAT, out, (int)n, MPI_FLOAT, comm), "MPI_Allgather");
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);  // counted at the ring volume
  }
  std::unique_ptr<SendHandle> isend(const float* buf, size_t n, int peer, int tag) override {
    auto h = std::make_unique<MpiSend>();
    for (size_t off = 0; off < n; off += CHUNK) {
      h->reqs.emplace_back();
      check_mpi(MPI_Isend(buf + off, (int)std::min(CHUNK, n - off), MPI_FLOAT, peer, tag, comm, &h->reqs.back()),
                "MPI_Isend");
    }
    bytes_sent += (double)n * sizeof(float);
    return h;
  }
  void recv(float* buf, size_t n, int peer, int tag) override {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t off = 0; off < n; off += CHUNK)
      check_mpi(MPI_Recv(buf + off, (int)std::min(CHUNK, n - off), MPI_FLOAT, peer, tag, comm, MPI_STATUS_IGNORE),
                "MPI_Recv");
    recv_wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  void broadcast(float* buf, size_t n, int root) override {
    for (size_t off = 0; off < n; off += CHUNK)
      check_mpi(MPI_Bcast(buf + off, (int)std::min(CHUNK, n - off), MPI_FLOAT, root, comm), "MPI_Bcast");
  }
  void barrier() override { check_mpi(MPI_Barrier(comm), "MPI_Barrier"); }
};

}  // namespace

bool have_mpi() { return true; }

void dist_init() {
  std::call_once(g_init_once, [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      if (launch_size_from_env() <= 1 && !std::getenv("MEDITRON_FORCE_MPI")) return;  // plain process
      // OpenMPI loads its components with dlopen and needs libmpi's symbols global: the FFI loader opened us
      // with RTLD_LOCAL, so re-open libmpi with RTLD_GLOBAL before MPI_Init.
      for (const char* name : {"libmpi.so.40", "libmpi.so.12", "libmpi.so"}) {
        if (dlopen(name, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) || dlopen(name, RTLD_NOW | RTLD_GLOBAL)) break;
      }
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
      MT_CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI provides thread level %d; SERIALIZED or better is needed",
               provided);
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    g_mpi_active = true;
  });
}

int world_rank() {
  if (!g_mpi_active) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  if (!g_mpi_active) return 1;
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void dist_finalize() {
  if (!g_mpi_active) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void dist_abort(int code) {
  if (g_mpi_active) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::unique_ptr<Comm> split_world(int color, int key) {
  if (!g_mpi_active) return make_self_comm();
  MPI_Comm c;
  check_mpi(MPI_Comm_split(MPI_COMM_WORLD, color, key, &c), "MPI_Comm_split");
  return std::make_unique<MpiComm>(c);
}

std::unique_ptr<Comm> world_comm() {
  if (!g_mpi_active) return make_self_comm();
  return std::make_unique<MpiComm>(MPI_COMM_WORLD);
}

int max_message_tag() {
  if (!g_mpi_active) return INT_MAX;
  int* ub = nullptr;
  int found = 0;
  check_mpi(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &found), "MPI_Comm_get_attr(MPI_TAG_UB)");
  return found && ub ? *ub : 32767;
}

#else  // built without MPI

bool have_mpi() { return false; }

void dist_init() {
  std::call_once(g_init_once, [] {
    MT_CHECK(launch_size_from_env() <= 1,
             "this process is one of %d ranks, but libmeditron was built without MPI "
             "(install libopenmpi-dev and rebuild: deno task build)",
             launch_size_from_env());
  });
}
int world_rank() { return 0; }
int world_size() { return 1; }
void dist_finalize() {}
void dist_abort(int code) { std::_Exit(code); }
std::unique_ptr<Comm> split_world(int, int) { return make_self_comm(); }
std::unique_ptr<Comm> world_comm() { return make_self_comm(); }
int max_message_tag() { return INT_MAX; }

#endif

}  // namespace mt
