// nccl_comm.cuh — Comm over NCCL on device buffers (DESIGN.md §5): every collective is enqueued on the
// backend's stream (stream-ordered: no host synchronisation; a buffer is reusable by later work on the same
// stream). One communicator per TP/DP/PP group, bootstrapped by broadcasting rank 0's ncclUniqueId over the
// group's host (MPI) communicator; a pipeline send is held back and posted with the next recv in one NCCL group
// (see NcclComm::isend). A group of one needs no NCCL: copies only. Where ranks share a GPU, a staged
// communicator over the host one takes NCCL's place.
#pragma once

#include <memory>

#include "comm.hpp"
#include "cuda/common.cuh"

namespace mt::cuda {

// Whether two ranks of `world` share a GPU (collective over it; the same answer on every rank): the machine's
// name and the GPU's UUID of each rank, compared. `device` is this rank's GPU.
bool gpus_shared(Comm& world, int device);

// The device communicator of a group (collective over `host`'s ranks), enqueuing on `stream`: NCCL, or when
// `shared` (gpus_shared: NCCL refuses two ranks on one GPU, and mixing NCCL and staged groups on one GPU would
// let two processes' NCCL kernels wait on each other) a communicator that stages every operation through host
// memory and `host` (MPI): each call copies its device buffer down, runs the host operation and copies the
// result up, synchronising `stream`. Slower than NCCL, but it lets a parallel layout run on one GPU. Staged
// traffic is counted by `host`.
std::unique_ptr<Comm> make_device_comm(Comm& host, cudaStream_t stream, bool shared);

}  // namespace mt::cuda
