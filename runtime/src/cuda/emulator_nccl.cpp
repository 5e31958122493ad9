// emulator_nccl.cpp — NCCL for the CUDA emulator (emulator.hpp), over MPI: the entry points nccl_comm.cu calls,
// with NCCL's contracts checked where a run on GPUs would fail, corrupt data or hang:
//   - ncclCommInitRank is collective over the communicator's ranks only (not the world): the id's creator, which
//     must be a member, gathers each member's NCCL rank, rank count, machine, device and copy of the id (so an id
//     whose bytes changed on the way shows), checks every rank is claimed once and no two members are on one
//     GPU (NCCL's "duplicate GPU"), and answers; the members then build their MPI communicator with
//     MPI_Comm_create_group (its rank = the NCCL rank);
//   - buffers must lie in one cudaMalloc allocation each, made on the communicator's device (the current device
//     at ncclCommInitRank), and the stream must be on that device too;
//   - in place only as NCCL defines it: all-reduce and broadcast with send == recv, reduce-scatter with recv ==
//     send + rank·count, all-gather with send == recv + rank·count; any other overlap fails;
//   - every rank gets the same bits (reduced once, then broadcast), as from NCCL's ring;
//   - outside a group, ncclSend returns when the peer has received (MPI_Ssend), so two ranks sending to each
//     other hang here as they do on GPUs; between ncclGroupStart and ncclGroupEnd, sends and receives are posted
//     (MPI_Issend/Irecv: a send still completes only when its receive has started) and complete together at
//     ncclGroupEnd, as a group's do; a receive into a buffer that a send of the same group reads (or the
//     reverse) fails, as it races on a GPU (collectives in a group are not emulated: they fail).
// Streams are synchronous in the emulator: each call completes before it returns, where NCCL only enqueues it. So
// a missing stream synchronisation before the host reads a result does not show, and host work that a peer
// waits for between an ncclSend and its completion would hang here (the backend does neither). Counts are
// limited to INT_MAX (MPI's). Built without MPI, only communicators of one rank exist.
#include "common.hpp"
#include "cuda/emulator.hpp"

#include <nccl.h>
#ifdef MEDITRON_MPI
#include <mpi.h>
#endif

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using mt::format;

struct ncclComm {
  int rank = 0, size = 1, device = 0;
#ifdef MEDITRON_MPI
  MPI_Comm mpi = MPI_COMM_NULL;
#endif
};

namespace {

thread_local std::string last_message;
thread_local int group_depth = 0;  // ncclGroupStart calls not yet ended
#ifdef MEDITRON_MPI
thread_local std::vector<MPI_Request> group_requests;  // the open group's sends and receives
#endif
thread_local std::vector<std::pair<const void*, size_t>> group_sends, group_recvs;  // their buffers
ncclResult_t fail(ncclResult_t r, std::string message) {
  last_message = std::move(message);
  return r;
}

// The bytes of an ncclUniqueId: who made it (its world rank), a serial and a nonce that tell ids apart, and
// filler that includes float NaN patterns (a transport that treats the id as numbers would change them).
struct Id {
  char magic[8];
  int32_t creator;
  uint32_t serial;
  uint64_t nonce;
  unsigned char filler[NCCL_UNIQUE_ID_BYTES - 24];
};
static_assert(sizeof(Id) == sizeof(ncclUniqueId), "an Id is an ncclUniqueId");
constexpr char MAGIC[8] = {'m', 't', '-', 'e', 'm', 'u', 'n', 'c'};

size_t elem_bytes(ncclDataType_t t) { return t == ncclFloat32 ? 4 : t == ncclFloat64 ? 8 : 0; }

bool overlap(const void* a, size_t an, const void* b, size_t bn) {
  const char *x = static_cast<const char*>(a), *y = static_cast<const char*>(b);
  return an && bn && x < y + bn && y < x + an;
}

// The checks every operation makes: the communicator, the count (per rank), the type, the stream's device, and
// that each buffer of the given bytes is memory of the communicator's device.
ncclResult_t check(const char* call, ncclComm_t c, size_t count, ncclDataType_t t, cudaStream_t s,
                   std::initializer_list<std::pair<const void*, size_t>> buffers) {
  if (!c) return fail(ncclInvalidArgument, format("%s: a null communicator", call));
  if (group_depth && std::strcmp(call, "ncclSend") != 0 && std::strcmp(call, "ncclRecv") != 0)
    return fail(ncclInvalidUsage, format("%s in an ncclGroupStart group: the emulator groups sends and receives "
                                         "only", call));
  if (count > (size_t)INT_MAX / c->size)
    return fail(ncclInvalidArgument, format("%s: %zu elements per rank, over the emulator's limit (MPI counts are "
                                            "int)", call, count));
  if (!elem_bytes(t))
    return fail(ncclInvalidArgument, format("%s: data type %d (the emulator has float32 and float64)", call, (int)t));
  if (mt::emu::stream_device(s) != c->device)
    return fail(ncclInvalidUsage, format("%s: the stream is on device %d, the communicator on device %d", call,
                                         mt::emu::stream_device(s), c->device));
  for (const auto& [p, bytes] : buffers) {
    if (!bytes) continue;
    const int d = mt::emu::device_of(p, bytes);
    if (d < 0)
      return fail(ncclInvalidArgument,
                  format("%s: %p + %zu bytes is not device memory of one cudaMalloc allocation", call, p, bytes));
    if (d != c->device)
      return fail(ncclInvalidArgument, format("%s: %p is memory of device %d, the communicator's is device %d", call,
                                              p, d, c->device));
  }
  return ncclSuccess;
}

ncclResult_t check_op(const char* call, ncclRedOp_t op) {
  return op == ncclSum || op == ncclMax
           ? ncclSuccess
           : fail(ncclInvalidArgument, format("%s: reduction %d (the emulator has sum and max)", call, (int)op));
}

#ifdef MEDITRON_MPI
ncclResult_t mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return ncclSuccess;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return fail(ncclSystemError, format("%s failed: %.*s", what, len, text));
}
#define MT_MPI(call)                                               \
  do {                                                             \
    if (const ncclResult_t r_ = mpi((call), #call)) return r_;     \
  } while (0)

MPI_Datatype mpi_type(ncclDataType_t t) { return t == ncclFloat32 ? MPI_FLOAT : MPI_DOUBLE; }
MPI_Op mpi_op(ncclRedOp_t op) { return op == ncclSum ? MPI_SUM : MPI_MAX; }

// The bootstrap's message tag on MPI_COMM_WORLD, from the id's serial: its messages go to the creator, whose ids
// differ in serial (the library's own traffic on MPI_COMM_WORLD is collectives and a ring with tag 77).
int id_tag(const Id& id) { return 16384 + (int)(id.serial % 16383); }

// A member's request to join, sent to the id's creator (zero-filled, padding included: it goes as bytes).
struct Join {
  Id id;
  int32_t rank, nranks, world, device;
  char host[64];
};
Join make_join(const Id& id, int rank, int nranks, int world) {
  Join j;
  std::memset(&j, 0, sizeof j);
  j.id = id, j.rank = rank, j.nranks = nranks, j.world = world, j.device = mt::emu::current_device();
  gethostname(j.host, sizeof j.host - 1);
  return j;
}

// The creator's side: every other member's Join, checked; each gets the world ranks by NCCL rank, or the error.
ncclResult_t gather_members(const Id& id, int nranks, int rank, int me, int tag, std::vector<int>& world) {
  world.assign(nranks, -1);
  world[rank] = me;
  std::vector<Join> members{make_join(id, rank, nranks, me)};
  std::string why;
  std::vector<int> senders;
  for (int i = 1; i < nranks; i++) {
    Join j;
    MPI_Status st;
    MT_MPI(MPI_Recv(&j, sizeof j, MPI_BYTE, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &st));
    senders.push_back(st.MPI_SOURCE);
    if (!why.empty()) continue;
    const auto same_gpu = std::find_if(members.begin(), members.end(), [&](const Join& m) {
      return m.device == j.device && std::strncmp(m.host, j.host, sizeof j.host) == 0;
    });
    if (std::memcmp(&j.id, &id, sizeof id) != 0)
      why = format("world rank %d's id differs from the one world rank %d made (changed on the way, or two "
                   "communicators' bootstraps crossed)", j.world, me);
    else if (j.nranks != nranks)
      why = format("world rank %d asked for %d ranks, world rank %d for %d", j.world, j.nranks, me, nranks);
    else if (j.rank < 0 || j.rank >= nranks)
      why = format("world rank %d asked for NCCL rank %d, outside [0, %d)", j.world, j.rank, nranks);
    else if (world[j.rank] != -1)
      why = format("NCCL rank %d claimed by world ranks %d and %d", j.rank, world[j.rank], j.world);
    else if (same_gpu != members.end())
      why = format("duplicate GPU: world ranks %d and %d are both on device %d of %s", same_gpu->world, j.world,
                   j.device, j.host);
    else
      world[j.rank] = j.world, members.push_back(j);
  }
  // Answer: [status, n, n world ranks] then the error message's bytes.
  std::vector<int> reply{why.empty() ? 0 : 1, nranks};
  reply.insert(reply.end(), world.begin(), world.end());
  std::vector<char> bytes(reply.size() * sizeof(int) + why.size());
  std::memcpy(bytes.data(), reply.data(), reply.size() * sizeof(int));
  std::memcpy(bytes.data() + reply.size() * sizeof(int), why.data(), why.size());
  for (int s : senders) MT_MPI(MPI_Send(bytes.data(), (int)bytes.size(), MPI_BYTE, s, tag, MPI_COMM_WORLD));
  return why.empty() ? ncclSuccess : fail(ncclInvalidUsage, "ncclCommInitRank: " + why);
}

// A member's side: its Join to the creator, and the answer.
ncclResult_t join_creator(const Id& id, int nranks, int rank, int me, int tag, std::vector<int>& world) {
  const Join j = make_join(id, rank, nranks, me);
  MT_MPI(MPI_Send(&j, sizeof j, MPI_BYTE, id.creator, tag, MPI_COMM_WORLD));
  MPI_Status st;
  MT_MPI(MPI_Probe(id.creator, tag, MPI_COMM_WORLD, &st));
  int n = 0;
  MT_MPI(MPI_Get_count(&st, MPI_BYTE, &n));
  std::vector<char> bytes(n);
  MT_MPI(MPI_Recv(bytes.data(), n, MPI_BYTE, id.creator, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  int head[2] = {1, 0};  // status, the creator's rank count
  std::memcpy(head, bytes.data(), sizeof head);
  const size_t off = std::min(bytes.size(), sizeof head + (size_t)head[1] * sizeof(int));
  if (head[0] != 0)
    return fail(ncclInvalidUsage, format("ncclCommInitRank (world rank %d): the creator refused: %.*s", me,
                                         (int)(bytes.size() - off), bytes.data() + off));
  world.resize(nranks);
  std::memcpy(world.data(), bytes.data() + sizeof head, nranks * sizeof(int));
  return ncclSuccess;
}
#endif

// A grouped send's or receive's buffer against the other kind's buffers in the open group.
ncclResult_t check_grouped(const char* call, const void* buf, size_t bytes, bool send) {
  if (!group_depth) return ncclSuccess;
  for (const auto& [p, n] : send ? group_recvs : group_sends)
    if (overlap(buf, bytes, p, n))
      return fail(ncclInvalidUsage, format("%s: its buffer %p overlaps a %s of the same group (%p), which races", call,
                                           buf, send ? "receive" : "send", p));
  (send ? group_sends : group_recvs).emplace_back(buf, bytes);
  return ncclSuccess;
}

// ncclSend (`send`) or ncclRecv: posted in the open group (completing at ncclGroupEnd), or complete on return.
ncclResult_t point_to_point(const char* call, void* buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c,
                            cudaStream_t s, bool send) {
  const size_t bytes = count * elem_bytes(t);
  if (const ncclResult_t r = check(call, c, count, t, s, {{buf, bytes}})) return r;
  if (peer < 0 || peer >= c->size) return fail(ncclInvalidArgument, format("%s: peer %d of %d", call, peer, c->size));
  if (const ncclResult_t r = check_grouped(call, buf, bytes, send)) return r;
#ifdef MEDITRON_MPI
  if (c->size == 1) return ncclSuccess;
  const int n = (int)count;
  if (group_depth) {
    MPI_Request& q = group_requests.emplace_back();
    MT_MPI(send ? MPI_Issend(buf, n, mpi_type(t), peer, 0, c->mpi, &q)
                : MPI_Irecv(buf, n, mpi_type(t), peer, 0, c->mpi, &q));
  } else {
    MT_MPI(send ? MPI_Ssend(buf, n, mpi_type(t), peer, 0, c->mpi)
                : MPI_Recv(buf, n, mpi_type(t), peer, 0, c->mpi, MPI_STATUS_IGNORE));
  }
#endif
  return ncclSuccess;
}

}  // namespace

extern "C" {

ncclResult_t ncclGetUniqueId(ncclUniqueId* out) {
  if (!out) return fail(ncclInvalidArgument, "ncclGetUniqueId: a null id");
  static std::atomic<uint32_t> serial{0};
  Id id{};
  std::memcpy(id.magic, MAGIC, sizeof MAGIC);
#ifdef MEDITRON_MPI
  int init = 0;
  MPI_Initialized(&init);
  if (init) MPI_Comm_rank(MPI_COMM_WORLD, &id.creator);
#endif
  id.serial = serial++;
  id.nonce = (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count() * 0x9e3779b97f4a7c15ull;
  uint64_t x = id.nonce;
  for (unsigned char& b : id.filler) x = x * 6364136223846793005ull + 1442695040888963407ull, b = (uint8_t)(x >> 56);
  const uint32_t nans[2] = {0x7f800001u, 0xffffffffu};  // a signalling NaN and an all-ones NaN
  std::memcpy(id.filler, nans, sizeof nans);
  std::memcpy(out, &id, sizeof id);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* out, int nranks, ncclUniqueId raw, int rank) {
  if (!out) return fail(ncclInvalidArgument, "ncclCommInitRank: a null communicator pointer");
  *out = nullptr;
  Id id;
  std::memcpy(&id, &raw, sizeof id);
  if (std::memcmp(id.magic, MAGIC, sizeof MAGIC) != 0)
    return fail(ncclInvalidArgument, "ncclCommInitRank: the id is not one ncclGetUniqueId made (its bytes changed)");
  auto c = std::make_unique<ncclComm>();
  c->rank = rank, c->size = nranks, c->device = mt::emu::current_device();
#ifdef MEDITRON_MPI
  int init = 0, me = 0;
  MPI_Initialized(&init);
  if (init) MT_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &me));
  // A member with a bad rank still asks to join, so that the creator refuses every member (none waits forever).
  if (init && me != id.creator && nranks > 1 && (rank < 0 || rank >= nranks)) {
    std::vector<int> world;
    const ncclResult_t r = join_creator(id, nranks, rank, me, id_tag(id), world);
    return r ? r : fail(ncclInternalError, "ncclCommInitRank: the creator accepted a bad rank");
  }
#endif
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return fail(ncclInvalidArgument, format("ncclCommInitRank: rank %d of %d", rank, nranks));
  if (nranks > 1) {
#ifdef MEDITRON_MPI
    if (!init) return fail(ncclInvalidUsage, "ncclCommInitRank: the emulated NCCL needs MPI, which is not running");
    const int tag = id_tag(id);
    std::vector<int> world;
    if (const ncclResult_t r = me == id.creator ? gather_members(id, nranks, rank, me, tag, world)
                                                : join_creator(id, nranks, rank, me, tag, world))
      return r;
    MPI_Group all, members = MPI_GROUP_NULL;
    MT_MPI(MPI_Comm_group(MPI_COMM_WORLD, &all));
    int rc = MPI_Group_incl(all, nranks, world.data(), &members);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_create_group(MPI_COMM_WORLD, members, tag, &c->mpi);
    if (members != MPI_GROUP_NULL) MPI_Group_free(&members);
    MPI_Group_free(&all);
    MT_MPI(rc);
#else
    return fail(ncclInvalidUsage, "ncclCommInitRank: built without MPI, the emulated NCCL has groups of one only");
#endif
  }
  *out = c.release();
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
  if (!c) return ncclSuccess;
#ifdef MEDITRON_MPI
  int done = 0;
  MPI_Finalized(&done);
  if (c->mpi != MPI_COMM_NULL && !done) MPI_Comm_free(&c->mpi);
#endif
  delete c;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t s) {
  const size_t bytes = count * elem_bytes(t);
  if (const ncclResult_t r = check("ncclAllReduce", c, count, t, s, {{send, bytes}, {recv, bytes}})) return r;
  if (const ncclResult_t r = check_op("ncclAllReduce", op)) return r;
  if (send != recv && overlap(send, bytes, recv, bytes))
    return fail(ncclInvalidArgument, "ncclAllReduce: send and receive buffers overlap without being the same");
  if (!count) return ncclSuccess;
  if (send != recv) std::memcpy(recv, send, bytes);
#ifdef MEDITRON_MPI
  if (c->size > 1) {  // reduced once on rank 0, then broadcast: the same bits on every rank
    MT_MPI(MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : recv, recv, (int)count, mpi_type(t), mpi_op(op), 0, c->mpi));
    MT_MPI(MPI_Bcast(recv, (int)count, mpi_type(t), 0, c->mpi));
  }
#endif
  return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                               ncclComm_t c, cudaStream_t s) {
  const size_t bytes = count * elem_bytes(t), all = c ? bytes * c->size : 0;
  if (const ncclResult_t r = check("ncclReduceScatter", c, count, t, s, {{send, all}, {recv, bytes}})) return r;
  if (const ncclResult_t r = check_op("ncclReduceScatter", op)) return r;
  const bool in_place = recv == static_cast<const char*>(send) + c->rank * bytes;
  if (!in_place && overlap(send, all, recv, bytes))
    return fail(ncclInvalidArgument, "ncclReduceScatter: the receive buffer overlaps the send buffer other than "
                                     "at this rank's chunk (send + rank·count)");
  if (!count) return ncclSuccess;
  std::vector<char> copy;  // in place: MPI's sendbuf and recvbuf may not overlap
  if (in_place) copy.assign(static_cast<const char*>(send), static_cast<const char*>(send) + all), send = copy.data();
  if (c->size == 1) return std::memmove(recv, send, bytes), ncclSuccess;
#ifdef MEDITRON_MPI
  MT_MPI(MPI_Reduce_scatter_block(send, recv, (int)count, mpi_type(t), mpi_op(op), c->mpi));
#endif
  return ncclSuccess;
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t count, ncclDataType_t t, ncclComm_t c,
                           cudaStream_t s) {
  const size_t bytes = count * elem_bytes(t), all = c ? bytes * c->size : 0;
  if (const ncclResult_t r = check("ncclAllGather", c, count, t, s, {{send, bytes}, {recv, all}})) return r;
  const bool in_place = send == static_cast<const char*>(recv) + c->rank * bytes;
  if (!in_place && overlap(send, bytes, recv, all))
    return fail(ncclInvalidArgument, "ncclAllGather: the send buffer overlaps the receive buffer other than at "
                                     "this rank's block (recv + rank·count)");
  if (!count) return ncclSuccess;
  if (c->size == 1) return std::memmove(recv, send, bytes), ncclSuccess;
#ifdef MEDITRON_MPI
  MT_MPI(MPI_Allgather(in_place ? MPI_IN_PLACE : send, (int)count, mpi_type(t), recv, (int)count, mpi_type(t),
                       c->mpi));
#endif
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t t, int root, ncclComm_t c,
                           cudaStream_t s) {
  const size_t bytes = count * elem_bytes(t);
  const bool is_root = c && c->rank == root;
  if (const ncclResult_t r = check("ncclBroadcast", c, count, t, s, {{is_root ? send : nullptr, is_root ? bytes : 0},
                                                              {recv, bytes}}))
    return r;
  if (root < 0 || root >= c->size)
    return fail(ncclInvalidArgument, format("ncclBroadcast: root %d of %d ranks", root, c->size));
  if (is_root && send != recv && overlap(send, bytes, recv, bytes))
    return fail(ncclInvalidArgument, "ncclBroadcast: send and receive buffers overlap without being the same");
  if (!count) return ncclSuccess;
  if (is_root && send != recv) std::memcpy(recv, send, bytes);
#ifdef MEDITRON_MPI
  if (c->size > 1) MT_MPI(MPI_Bcast(recv, (int)count, mpi_type(t), root, c->mpi));
#endif
  return ncclSuccess;
}

ncclResult_t ncclSend(const void* buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t s) {
  return point_to_point("ncclSend", const_cast<void*>(buf), count, t, peer, c, s, true);
}

ncclResult_t ncclRecv(void* buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t s) {
  return point_to_point("ncclRecv", buf, count, t, peer, c, s, false);
}

ncclResult_t ncclGroupStart() {
  group_depth++;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (group_depth == 0) return fail(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--group_depth > 0) return ncclSuccess;
  group_sends.clear(), group_recvs.clear();
#ifdef MEDITRON_MPI
  std::vector<MPI_Request> requests;
  requests.swap(group_requests);
  if (!requests.empty()) MT_MPI(MPI_Waitall((int)requests.size(), requests.data(), MPI_STATUSES_IGNORE));
#endif
  return ncclSuccess;
}

// The last failure's message (every caller passes the result it just got).
const char* ncclGetErrorString(ncclResult_t r) {
  if (r == ncclSuccess) return "no error";
  return last_message.empty() ? "emulated NCCL error" : last_message.c_str();
}

}  // extern "C"
