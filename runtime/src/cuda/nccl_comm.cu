// nccl_comm.cu — see nccl_comm.cuh.
#include <cstring>

#include "cuda/nccl_comm.cuh"

namespace mt::cuda {

namespace {

// Stream-ordered: the send is complete for every later operation on the stream.
struct StreamSend : SendHandle {
  cudaStream_t stream;
  explicit StreamSend(cudaStream_t s) : stream(s) {}
  void wait() override { CUDA_CHECK(cudaStreamSynchronize(stream)); }
};

struct NcclComm : Comm {
  ncclComm_t comm = nullptr;
  cudaStream_t stream;
  int rank_ = 0, size_ = 1;
  Buffer<float> one;  // barrier payload

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
    NCCL_CHECK(ncclReduceScatter(in, out, n, ncclFloat32, ncclSum, comm, stream));
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);
  }
  void all_gather(const float* in, float* out, size_t n) override {
    if (size_ == 1) {
      if (in != out) CUDA_CHECK(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
      return;
    }
    NCCL_CHECK(ncclAllGather(in, out, n, ncclFloat32, comm, stream));  // in == out + rank·n is in place
    bytes_sent += (double)(size_ - 1) * n * sizeof(float);
  }
  std::unique_ptr<SendHandle> isend(const float* buf, size_t n, int peer, int tag) override {
    MT_CHECK(size_ > 1, "send on a group of one");
    NCCL_CHECK(ncclSend(buf, n, ncclFloat32, peer, comm, stream));
    bytes_sent += (double)n * sizeof(float);
    return std::make_unique<StreamSend>(stream);
  }
  void recv(float* buf, size_t n, int peer, int tag) override {
    MT_CHECK(size_ > 1, "recv on a group of one");
    NCCL_CHECK(ncclRecv(buf, n, ncclFloat32, peer, comm, stream));
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

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& host, cudaStream_t stream) {
  return std::make_unique<NcclComm>(host, stream);
}

}  // namespace mt::cuda
