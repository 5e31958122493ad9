// nccl_comm.cu — see nccl_comm.cuh.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda/kernels.cuh"
#include "cuda/nccl_comm.cuh"

namespace mt::cuda {

namespace {

struct NcclComm : Comm {
  ncclComm_t comm = nullptr;
  cudaStream_t stream;
  int rank_ = 0, size_ = 1;
  Buffer<float> one;  // barrier payload
  // Point-to-point sends held back until the next recv or flush (see isend).
  struct Held {
    const float* buf;
    size_t n;
    int peer;
  };
  std::vector<Held> held;

  NcclComm(Comm& host, cudaStream_t s) : stream(s), rank_(host.rank()), size_(host.size()) {
    if (size_ == 1) return;
    ncclUniqueId id;
    static_assert(sizeof(ncclUniqueId) % sizeof(float) == 0, "ncclUniqueId is a whole number of floats");
    std::memset(&id, 0, sizeof id);
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    host.broadcast(reinterpret_cast<float*>(&id), sizeof id / sizeof(float), 0);  // bytes, not numbers
    NCCL_CHECK(ncclCommInitRank(&comm, size_, id, rank_));
    one.resize(1);
  }
  ~NcclComm() override {
    if (comm) ncclCommDestroy(comm);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(void* buf, size_t n, ncclDataType_t t, ncclRedOp_t op, size_t elem) {
    if (size_ == 1 || n == 0) return;
    profile_mark(Work::Comm, stream);
    NCCL_CHECK(ncclAllReduce(buf, buf, n, t, op, comm, stream));
    bytes_sent += 2.0 * (size_ - 1) / size_ * n * elem;  // ring volume
  }
  void all_reduce_sum(float* buf, size_t n) override { all_reduce(buf, n, ncclFloat32, ncclSum, sizeof(float)); }
  void all_reduce_sum(double* buf, size_t n) override { all_reduce(buf, n, ncclFloat64, ncclSum, sizeof(double)); }
  void all_reduce_max(float* buf, size_t n) override { all_reduce(buf, n, ncclFloat32, ncclMax, sizeof(float)); }
  void reduce_scatter_sum(const float* in, float* out, size_t n) override {
    if (size_ == 1) {
      if (in != out) CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      return;
    }
    profile_mark(Work::Comm, stream);
    NCCL_CHECK(ncclReduceScatter(in, out, n, ncclFloat32, ncclSum, comm, stream));
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);
  }
  void all_gather(const float* in, float* out, size_t n) override {
    if (size_ == 1) {
      if (in != out) CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      return;
    }
    profile_mark(Work::Comm, stream);
    NCCL_CHECK(ncclAllGather(in, out, n, ncclFloat32, comm, stream));  // in == out + rank·n is in place
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);
  }
  // A send is held back and posted with the next recv in one NCCL group (Megatron's batched send_forward_
  // recv_backward / send_backward_recv_forward): two neighbours' blocking sends to each other would wait
  // forever, grouped with the recvs they both post they complete. Nothing may write the buffer before the send is
  // posted (the next recv, flush() or wait(); the pipeline schedule does no work in between); after that, stream
  // order protects it. NCCL has no tags: messages between two ranks match in the order they are posted.
  struct HeldSend : SendHandle {
    NcclComm& c;
    explicit HeldSend(NcclComm& comm) : c(comm) {}
    void wait() override { c.flush(); }  // posted: later work on the stream sees the send done
  };
  std::unique_ptr<SendHandle> isend(const float* buf, size_t n, int peer, int tag) override {
    MT_CHECK(size_ > 1, "send on a group of one");
    MT_CHECK(peer >= 0 && peer < size_ && peer != rank_, "send to rank %d of a group of %d (this is %d)", peer, size_,
             rank_);
    held.push_back({buf, n, peer});
    bytes_sent += (double)n * sizeof(float);
    return std::make_unique<HeldSend>(*this);
  }
  void recv(float* buf, size_t n, int peer, int tag) override {
    MT_CHECK(size_ > 1, "recv on a group of one");
    post(buf, n, peer);
  }
  void flush() override { post(nullptr, 0, 0); }
  // The held sends and, with `buf`, one recv, as one group.
  void post(float* buf, size_t n, int peer) {
    if (held.empty() && !buf) return;
    profile_mark(Work::Comm, stream);
    NCCL_CHECK(ncclGroupStart());
    ncclResult_t r = ncclSuccess;
    for (const Held& h : held)
      if (r == ncclSuccess) r = ncclSend(h.buf, h.n, ncclFloat32, h.peer, comm, stream);
    if (buf && r == ncclSuccess) r = ncclRecv(buf, n, ncclFloat32, peer, comm, stream);
    held.clear();
    const ncclResult_t end = ncclGroupEnd();  // closes the group even after a failed call
    if (r == ncclSuccess) r = end;
    if (r != ncclSuccess)
      throw Error(MT_ERR_INTERNAL, format("pipeline send/recv (one NCCL group) failed: %s", ncclGetErrorString(r)));
  }
  void broadcast(float* buf, size_t n, int root) override {
    if (size_ == 1) return;
    NCCL_CHECK(ncclBroadcast(buf, buf, n, ncclFloat32, root, comm, stream));
  }
  void barrier() override {
    if (size_ > 1) NCCL_CHECK(ncclAllReduce(one.data(), one.data(), 1, ncclFloat32, ncclSum, comm, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
};

// A send staged through host memory: the host copy is the send buffer, kept until the send completes.
struct StagedSend : SendHandle {
  std::vector<float> data;
  std::unique_ptr<SendHandle> inner;
  void wait() override {
    if (inner) inner->wait(), inner.reset();
  }
};

struct StagedComm : Comm {
  Comm& host;
  cudaStream_t stream;
  std::vector<float> a, b;
  std::vector<double> d;

  StagedComm(Comm& h, cudaStream_t s) : host(h), stream(s) {}
  int rank() const override { return host.rank(); }
  int size() const override { return host.size(); }

  template <class T>
  void down(std::vector<T>& h, const T* dev, size_t n) {
    profile_mark(Work::Comm, stream);
    h.resize(n);
    CUDA_CHECK(cudaMemcpyAsync(h.data(), dev, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  template <class T>
  void up(T* dev, const std::vector<T>& h, size_t n) {
    CUDA_CHECK(cudaMemcpyAsync(dev, h.data(), n * sizeof(T), cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  void all_reduce_sum(float* buf, size_t n) override {
    if (size() == 1 || n == 0) return;
    down(a, buf, n), host.all_reduce_sum(a.data(), n), up(buf, a, n);
  }
  void all_reduce_sum(double* buf, size_t n) override {
    if (size() == 1 || n == 0) return;
    down(d, buf, n), host.all_reduce_sum(d.data(), n), up(buf, d, n);
  }
  void all_reduce_max(float* buf, size_t n) override {
    if (size() == 1 || n == 0) return;
    down(a, buf, n), host.all_reduce_max(a.data(), n), up(buf, a, n);
  }
  void reduce_scatter_sum(const float* in, float* out, size_t n) override {
    down(a, in, (size_t)size() * n);
    b.resize(n);
    host.reduce_scatter_sum(a.data(), b.data(), n);
    up(out, b, n);
  }
  void all_gather(const float* in, float* out, size_t n) override {
    down(a, in, n);
    b.resize((size_t)size() * n);
    host.all_gather(a.data(), b.data(), n);
    up(out, b, b.size());
  }
  std::unique_ptr<SendHandle> isend(const float* buf, size_t n, int peer, int tag) override {
    auto h = std::make_unique<StagedSend>();
    down(h->data, buf, n);
    h->inner = host.isend(h->data.data(), n, peer, tag);
    return h;
  }
  void recv(float* buf, size_t n, int peer, int tag) override {
    profile_mark(Work::Comm, stream);
    a.resize(n);
    host.recv(a.data(), n, peer, tag);
    up(buf, a, n);
  }
  void broadcast(float* buf, size_t n, int root) override {
    if (size() == 1) return;
    down(a, buf, n), host.broadcast(a.data(), n, root), up(buf, a, n);
  }
  void barrier() override {
    CUDA_CHECK(cudaStreamSynchronize(stream));
    host.barrier();
  }
};

// 24 bits of FNV-1a of n bytes (a whole number, exact in a float).
float key24(const char* bytes, size_t n) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)bytes[i]) * 0x01000193u;
  return (float)(h & 0xffffffu);
}

}  // namespace

bool gpus_shared(Comm& world, int device) {
  if (world.size() == 1) return false;
  // (machine, GPU UUID) of every rank: indices alone mislead under per-rank CUDA_VISIBLE_DEVICES. A hash
  // collision only picks the slower staged path.
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  const float mine[2] = {key24(name, std::strlen(name)), key24(prop.uuid.bytes, sizeof prop.uuid.bytes)};
  std::vector<float> all(2 * (size_t)world.size());
  world.all_gather(mine, all.data(), 2);
  for (int i = 0; i < world.size(); i++)
    for (int j = i + 1; j < world.size(); j++)
      if (all[2 * i] == all[2 * j] && all[2 * i + 1] == all[2 * j + 1]) return true;
  return false;
}

std::unique_ptr<Comm> make_device_comm(Comm& host, cudaStream_t stream, bool shared) {
  if (shared) return std::make_unique<StagedComm>(host, stream);
  return std::make_unique<NcclComm>(host, stream);
}

}  // namespace mt::cuda
