// nccl_comm.cuh — Comm over NCCL on device buffers (DESIGN.md §5): every collective is enqueued on the
// backend's stream (stream-ordered: no host synchronisation; a buffer is reusable by later work on the same
// stream). One communicator per TP/DP/PP/world group, bootstrapped by broadcasting rank 0's ncclUniqueId over
// the group's host (MPI) communicator. A group of one needs no NCCL: copies only.
#pragma once

#include <memory>

#include "comm.hpp"
#include "cuda/common.cuh"

namespace mt::cuda {

// The NCCL communicator of the ranks of `host` (collective over them), enqueuing on `stream`.
std::unique_ptr<Comm> make_nccl_comm(Comm& host, cudaStream_t stream);

}  // namespace mt::cuda
