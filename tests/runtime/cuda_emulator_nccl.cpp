// The emulated NCCL over MPI (runtime/src/cuda/emulator_nccl.cpp) on two ranks, one emulated GPU each
// (tests/runtime/cuda_emulator_test.ts builds this with mpicxx against the emulator and runs it under mpirun -n 2
// with MEDITRON_CUDA_EMULATE_GPUS=2): every collective the backend uses, in and out of place, against the values
// it must give, and the bootstraps NCCL refuses (two ranks on one GPU, different rank counts, a rank out of
// range), which must fail on both ranks instead of hanging. Prints "PASS name" or "FAIL name: why" per check
// and rank; exit status 1 when a check failed.
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cuda/common.cuh"

namespace {

int rank = 0, failures = 0;
void report(const char* name, bool ok, const std::string& why = "") {
  if (ok) std::printf("PASS rank %d: %s\n", rank, name);
  else std::printf("FAIL rank %d: %s: %s\n", rank, name, why.c_str()), failures++;
  std::fflush(stdout);
}

// A communicator as nccl_comm.cu makes one: rank 0's id broadcast over MPI as bytes.
ncclResult_t init(ncclComm_t* c, int nranks, int my_rank) {
  ncclUniqueId id;
  if (rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  return ncclCommInitRank(c, nranks, id, my_rank);
}

// A device buffer holding `host`, and its contents back.
template <class T>
T* upload(const std::vector<T>& host) {
  T* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, host.size() * sizeof(T)));
  CUDA_CHECK(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T>
std::vector<T> download(const T* d, size_t n) {
  std::vector<T> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

void collectives() {
  CUDA_CHECK(cudaSetDevice(rank));
  ncclComm_t c = nullptr;
  NCCL_CHECK(init(&c, 2, rank));
  constexpr int n = 5;
  std::vector<float> x(2 * n);
  for (int i = 0; i < 2 * n; i++) x[i] = (float)((rank + 1) * (i + 1));  // rank 0: i+1, rank 1: 2(i+1)
  float* d = upload(x);
  NCCL_CHECK(ncclAllReduce(d, d, 2 * n, ncclFloat32, ncclSum, c, nullptr));
  auto y = download(d, 2 * n);
  report("all-reduce sum in place", y[0] == 3 && y[9] == 30);
  CUDA_CHECK(cudaMemcpy(d, x.data(), sizeof(float) * 2 * n, cudaMemcpyHostToDevice));
  float* out = upload(std::vector<float>(2 * n, 0.0f));
  NCCL_CHECK(ncclAllReduce(d, out, 2 * n, ncclFloat32, ncclMax, c, nullptr));
  y = download(out, 2 * n);
  report("all-reduce max out of place", y[0] == 2 && y[9] == 20 && download(d, 1)[0] == x[0]);
  double* dd = upload(std::vector<double>{0.1 * (rank + 1), 1e300});
  NCCL_CHECK(ncclAllReduce(dd, dd, 2, ncclFloat64, ncclSum, c, nullptr));
  const auto z = download(dd, 2);
  report("all-reduce of doubles", z[0] == 0.1 + 0.2 && z[1] == 2e300);
  // Reduce-scatter in place: this rank's chunk of the sum lands at d + rank·n.
  CUDA_CHECK(cudaMemcpy(d, x.data(), sizeof(float) * 2 * n, cudaMemcpyHostToDevice));
  NCCL_CHECK(ncclReduceScatter(d, d + rank * n, n, ncclFloat32, ncclSum, c, nullptr));
  y = download(d + rank * n, n);
  report("reduce-scatter in place", y[0] == 3.0f * (rank * n + 1) && y[4] == 3.0f * (rank * n + 5));
  // All-gather in place: rank r's block at out + r·n.
  std::vector<float> mine(2 * n, -1.0f);
  for (int i = 0; i < n; i++) mine[rank * n + i] = (float)(100 * rank + i);
  CUDA_CHECK(cudaMemcpy(out, mine.data(), sizeof(float) * 2 * n, cudaMemcpyHostToDevice));
  NCCL_CHECK(ncclAllGather(out + rank * n, out, n, ncclFloat32, c, nullptr));
  y = download(out, 2 * n);
  report("all-gather in place", y[0] == 0 && y[4] == 4 && y[5] == 100 && y[9] == 104);
  // Broadcast from rank 1; rank 0's send buffer is not read (null).
  CUDA_CHECK(cudaMemcpy(d, x.data(), sizeof(float) * 2 * n, cudaMemcpyHostToDevice));
  NCCL_CHECK(ncclBroadcast(rank == 1 ? d : nullptr, d, 2 * n, ncclFloat32, 1, c, nullptr));
  y = download(d, 2 * n);
  report("broadcast from rank 1", y[0] == 2 && y[9] == 20);
  // A send from rank 0, received by rank 1.
  if (rank == 0) NCCL_CHECK(ncclSend(d, 3, ncclFloat32, 1, c, nullptr));
  else NCCL_CHECK(ncclRecv(out, 3, ncclFloat32, 0, c, nullptr));
  if (rank == 1) report("send and receive", download(out, 3)[2] == 6);
  // Both send to each other and receive in one group (two blocking sends to each other would wait forever).
  const float mine2[2] = {10.0f * rank + 1, 10.0f * rank + 2};
  CUDA_CHECK(cudaMemcpy(d, mine2, sizeof mine2, cudaMemcpyHostToDevice));
  NCCL_CHECK(ncclGroupStart());
  NCCL_CHECK(ncclSend(d, 2, ncclFloat32, 1 - rank, c, nullptr));
  NCCL_CHECK(ncclRecv(out, 2, ncclFloat32, 1 - rank, c, nullptr));
  NCCL_CHECK(ncclGroupEnd());
  report("a grouped exchange both ways", download(out, 2)[1] == 10.0f * (1 - rank) + 2);
  for (void* p : {(void*)d, (void*)out, (void*)dd}) CUDA_CHECK(cudaFree(p));
  NCCL_CHECK(ncclCommDestroy(c));
}

void expect_refused(const char* name, ncclResult_t r, const char* needle) {
  const std::string msg = r == ncclSuccess ? "" : ncclGetErrorString(r);
  report(name, msg.find(needle) != std::string::npos, msg.empty() ? "it succeeded" : "message: " + msg);
}

void refusals() {
  ncclComm_t c = nullptr;
  CUDA_CHECK(cudaSetDevice(0));
  expect_refused("two ranks on one GPU are refused", init(&c, 2, rank), "duplicate GPU");
  CUDA_CHECK(cudaSetDevice(rank));
  expect_refused("different rank counts are refused", init(&c, rank == 0 ? 2 : 3, rank), "asked for");
  expect_refused("a rank out of range is refused", init(&c, 2, rank == 0 ? 0 : 5), "outside [0, 2)");
  expect_refused("a rank claimed twice is refused", init(&c, 2, 0), "claimed by");
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  try {
    collectives();
    refusals();
  } catch (const std::exception& e) {
    report("no exception", false, e.what());
  }
  MPI_Finalize();
  return failures ? 1 : 0;
}
