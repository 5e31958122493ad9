// backend.cu — the CUDA backend of a Model (device.hpp): the same Llama-2 stage as model.cpp with
//   bf16 parameters and activations (cuBLAS GEMMs with fp32 accumulation), an fp32 residual stream,
//   fp32 master weights, fp32 gradients accumulated across micro-batches, fp32 AdamW state, fp32/fp64 reductions
// (DESIGN.md §4). Tensor parallelism uses the same Megatron f/g placement over NCCL; data parallelism sums the
// fp32 gradients over NCCL, or reduce-scatters them and all-gathers the updated master weights (ZeRO-1).
// Memory is accounted before every allocation of parameters and activations: a config that does not fit fails
// with the numbers. `recompute` (selective) keeps only what the backward pass cannot cheaply rebuild (the
// residual stream, the fused q|k|v and gate|up projections, the norms' rstd and the attention lse) and recomputes
// the normalised inputs, the attention output and the SwiGLU product in backward.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/kernels.cuh"
#include "cuda/nccl_comm.cuh"
#include "kernels.hpp"
#include "model.hpp"
#include "optim.hpp"

namespace mt {

namespace {

using cuda::bf16;
using cuda::Buffer;

enum LayerSlot { Q = 0, K, VV, O, GATE, UP, DOWN, LN1, LN2, SLOTS };  // as in model.cpp
constexpr double GiB = 1024.0 * 1024.0 * 1024.0;

// This process's GPU: the node-local rank (OpenMPI, Slurm, MPICH, torchrun) modulo the device count, or
// MEDITRON_CUDA_DEVICE.
int local_device() {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (const char* d = std::getenv("MEDITRON_CUDA_DEVICE")) return std::atoi(d) % count;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* v = std::getenv(var)) return std::atoi(v) % count;
  return 0;
}

// Grows a scratch buffer to at least n elements; returns its pointer.
template <class T>
T* grow(Buffer<T>& b, size_t n) {
  if (b.n < n) b.resize(n);
  return b.data();
}

struct CudaKv : DeviceKv {
  std::vector<Buffer<bf16>> k, v;  // per layer [max_seqs, max_len, KVH·hd]
};

struct CudaBackend : DeviceBackend {
  Model& M;
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  // The TP, DP and PP groups on the device (make_device_comm: NCCL, or staged where ranks share a GPU).
  std::unique_ptr<Comm> tp, dp, pp;
  bool shared = false;
  size_t total = 0;                          // floats of the flat buffers (ZeRO-1: dp·chunk)
  Buffer<float> master, grad, gown, adam_m, adam_v, rope;
  Buffer<bf16> param;
  Buffer<double> sums;  // [0] loss Σ mask·CE, [1] Σ g²

  // Activations of one in-flight micro-batch: one slot with pp = 1, pipeline_slots() of them under 1F1B.
  struct Layer {
    Buffer<float> x_in, rstd1, lse, x_mid, rstd2;
    Buffer<bf16> h1, qkv, att, h2, gu, s;  // h1, att, h2, s empty under recompute (shared scratch instead)
  };
  struct Slot {
    std::vector<Layer> layers;
    Buffer<float> x_fin, rstd_f, mask_d;
    Buffer<bf16> h_f;
    Buffer<int32_t> tok, tgt;
    // Packed rows: each token's segment start and its RoPE position within the segment (when `packed`).
    Buffer<int32_t> start, pos;
    bool packed = false;
    // Pipeline messages of this micro-batch, staged through host memory (kept until their sends complete).
    std::unique_ptr<SendHandle> fwd_send, bwd_send;
  };
  int B = 0, T = 0;
  std::vector<Slot> slots;
  Slot* a = nullptr;  // the slot forward() and loss_backward() work on (use())
  int profiled_steps = 0;  // train steps seen by MEDITRON_CUDA_PROFILE
  std::vector<int32_t> seg_host;  // segment starts and positions of one micro-batch, before their upload
  // Backward and recompute scratch, reused across layers and micro-batches.
  Buffer<float> dx, dh, tmp, dqkv32, D;
  Buffer<float> dx_sent;  // NCCL pipeline: the gradient a held send still reads while dx receives (swaps_dx)
  Buffer<bf16> dxb, dqkv, datt, dgu, ds, r_h1, r_att, r_h2, r_s;
  Buffer<float> logits32, rowmax, stats;
  Buffer<bf16> dlogits;
  int CH = 0;  // rows per logits chunk
  Buffer<int32_t> dec_tok, seq_d, pos_d, idx_d;
  // Decoding scratch (grown on demand).
  Buffer<float> dec_x, dec_tmp, dec_rstd, dec_logits;
  Buffer<bf16> dec_h, dec_qkv, dec_att, dec_gu, dec_s;

  explicit CudaBackend(Model& m) : M(m) {
    device = local_device();
    CUDA_CHECK(cudaSetDevice(device));
    total = M.p.size();
    const bool zero = M.topo.zero1 && M.topo.dp > 1;
    const double need = (double)total * (4 + 2 + 4) + (double)M.chunk * (8 + (zero ? 4 : 0)) +
                        (double)M.rope.size() * 4;
    agree_fits(fit_problem(need, "parameters (bf16 + fp32 master), fp32 gradients and AdamW state"));
    // A throwing constructor runs no destructor: the Buffers free themselves, the handles are released here.
    try {
      init();
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaBackend() override { release(); }

  // Stream, cuBLAS handle, device buffers and NCCL communicators (the constructor's work after the memory check).
  void init() {
    const bool zero = M.topo.zero1 && M.topo.dp > 1;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&blas));
    CUBLAS_CHECK(cublasSetStream(blas, stream));
    master.resize(total), param.resize(total), grad.resize(total), adam_m.resize(M.chunk), adam_v.resize(M.chunk);
    if (zero) gown.resize(M.chunk);
    rope.resize(M.rope.size());
    sums.resize(2);
    // On the backend's stream: a pageable cudaMemcpy may return before its data lands, and the legacy default
    // stream does not order a non-blocking stream's kernels after it.
    CUDA_CHECK(cudaMemcpyAsync(master.data(), M.p.data(), total * sizeof(float), cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(
        cudaMemcpyAsync(rope.data(), M.rope.data(), M.rope.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
    cuda::cast_to_bf16(param.data(), master.data(), total, stream);
    CUDA_CHECK(cudaMemsetAsync(grad.data(), 0, grad.bytes(), stream));
    CUDA_CHECK(cudaMemsetAsync(adam_m.data(), 0, adam_m.bytes(), stream));
    CUDA_CHECK(cudaMemsetAsync(adam_v.data(), 0, adam_v.bytes(), stream));
    shared = cuda::gpus_shared(*M.world, device);  // one choice for every group of this job
    tp = cuda::make_device_comm(*M.tp_comm, stream, shared);
    dp = cuda::make_device_comm(*M.dp_comm, stream, shared);
    pp = cuda::make_device_comm(*M.pp_comm, stream, shared);
    if (!shared) connect_stages();
    sync();
  }

  // NCCL connects a pair of ranks at their first point-to-point exchange, and a first group that is not the same
  // on both sides can hang (NVIDIA/nccl#2130: a send and a recv on one side, a recv on the other, which is the
  // first exchange of 1F1B with pp 2 and one micro-batch). So every pair of neighbouring stages exchanges one
  // float both ways first: pairs (0, 1), (2, 3)… then (1, 2), (3, 4)….
  void connect_stages() {
    const int s = M.topo.pp_rank, P = M.topo.pp;
    if (P == 1) return;
    Buffer<float> ping(2);
    CUDA_CHECK(cudaMemsetAsync(ping.data(), 0, ping.bytes(), stream));
    for (int phase = 0; phase < 2; phase++) {
      const int peer = (s + phase) % 2 == 0 ? s + 1 : s - 1;
      if (peer < 0 || peer >= P) continue;
      pp->isend(ping.data(), 1, peer, 0);     // held,
      pp->recv(ping.data() + 1, 1, peer, 0);  // then posted with the recv as one group
    }
    sync();
    pp->bytes_sent = 0;
  }

  // Frees what init() made, in reverse; safe on a partly made backend and never throws.
  void release() noexcept {
    cudaSetDevice(device);
    try {  // MEDITRON_CUDA_PROFILE's totals (process-wide) for the steps this model took
      if (stream) cudaStreamSynchronize(stream), cuda::profile_flush();
      cuda::profile_report(M.world->rank(), profiled_steps);
    } catch (...) {
    }
    if (stream) cudaStreamSynchronize(stream);
    for (Slot& sl : slots) sl.fwd_send.reset(), sl.bwd_send.reset();
    tp.reset(), dp.reset(), pp.reset();
    if (blas) cublasDestroy(blas), blas = nullptr;
    if (stream) cudaStreamDestroy(stream), stream = nullptr;
  }

  // Every entry point: nonblocking FFI calls arrive on pool threads, whose current device is their own.
  void enter() { CUDA_CHECK(cudaSetDevice(device)); }
  void sync() {
    cuda::profile_mark(cuda::Work::Idle, stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
    cuda::profile_flush();
  }

  static constexpr const char* kFitAdvice =
      "use fewer layers or a smaller micro-batch/seq, --recompute selective, tp > 1 or --zero1";
  // This rank's out-of-memory message for `need` bytes of `what`, or "" when they fit.
  std::string fit_problem(double need, const char* what) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need <= (double)free_b * 0.97) return "";
    return format("does not fit on GPU %d: %s need %.2f GiB but %.2f GiB of %.2f GiB are free (model d %d, "
                  "%d layers on this rank, tp %d, pp %d, dp %d, zero1 %d, recompute %s); %s",
                  device, what, need / GiB, free_b / GiB, total_b / GiB, M.cfg.dim, M.n_layers, M.topo.tp,
                  M.topo.pp, M.topo.dp, (int)M.topo.zero1, M.topo.recompute ? "selective" : "none", kFitAdvice);
  }
  // Throws the out-of-memory error on every pipeline stage when any stage has a `problem`. Stages need different
  // amounts (stage s keeps pp − s micro-batches in flight, layer counts may differ), and a stage that threw alone
  // would leave its neighbours blocked in a receive. Collective over the stages: every stage must call it.
  void agree_fits(const std::string& problem) {
    float bad = problem.empty() ? 0.0f : 1.0f;
    M.pp_comm->all_reduce_max(&bad, 1);
    if (!problem.empty()) throw Error(MT_ERR_OUT_OF_MEMORY, problem);
    if (bad > 0)
      throw Error(MT_ERR_OUT_OF_MEMORY,
                  format("another pipeline stage of this job does not fit in its GPU's memory (its error gives the "
                         "numbers); %s",
                         kFitAdvice));
  }

  const ParamInfo& info(int idx) const { return M.params[idx]; }
  bf16* W(int idx) { return param.data() + info(idx).offset; }
  float* G(int idx) { return grad.data() + info(idx).offset; }
  int lidx(int l, int slot) const { return M.layer_idx0 + l * SLOTS + slot; }

  int qd() const { return M.Hl * M.hd; }
  int kvd() const { return M.KVHl * M.hd; }
  int qkvd() const { return qd() + 2 * kvd(); }

  // Allocates the activations of `n` in-flight [B, T] micro-batches and the shared scratch, after checking that
  // they fit on every pipeline stage (agree_fits: every stage calls this at the same point of a step).
  void ensure_acts(int b, int t, int n) {
    if (b == B && t == T && n <= (int)slots.size()) return agree_fits("");
    wait_sends();
    // Free the previous buffers first, so the check sees what a fresh allocation would.
    slots.clear();
    for (Buffer<float>* f : {&dx, &dx_sent, &dh, &tmp, &dqkv32, &D, &logits32, &rowmax, &stats}) f->resize(0);
    for (Buffer<bf16>* h : {&dxb, &dqkv, &datt, &dgu, &ds, &r_h1, &r_att, &r_h2, &r_s, &dlogits}) h->resize(0);
    B = T = 0;
    const size_t N = (size_t)b * t, d = M.cfg.dim, F = M.Fl, Hl = M.Hl;
    const bool rc = M.topo.recompute;
    const size_t per_row_layer = 4 * d + 4 + 4 * Hl + 4 * d + 4 + 2 * (size_t)qkvd() + 2 * 2 * F +
                                 (rc ? 0 : 2 * d + 2 * (size_t)qd() + 2 * d + 2 * F);
    const size_t per_row_slot = 4 * d + 4 + 4 + 2 * d + 4 + 4 + 8;  // x_fin, rstd_f, mask, h_f, tok, tgt, start|pos
    const size_t per_row_scratch = 4 * d * (swaps_dx() ? 4 : 3) + 4 * (size_t)qkvd() + 4 * Hl + 2 * d +
                                   2 * (size_t)qkvd() + 2 * (size_t)qd() + 2 * 2 * F + 2 * F +
                                   (rc ? 2 * d + 2 * (size_t)qd() + 2 * d + 2 * F : 0);
    const size_t Vl = M.Vl;
    CH = (int)std::max<size_t>(1, std::min<size_t>(N, ((size_t)256 << 20) / (6 * Vl)));
    const double act = (double)n * N * (per_row_layer * M.n_layers + per_row_slot);
    const double scratch = (double)N * per_row_scratch + (double)CH * Vl * 6 + (double)CH * 12;
    agree_fits(fit_problem(act + scratch, format("activations of %d micro-batch%s of batch %d x seq %d (%.2f GiB over "
                                                 "%d layers) and scratch (%.2f GiB)",
                                                 n, n == 1 ? "" : "es in flight", b, t, act / GiB, M.n_layers,
                                                 scratch / GiB)
                                              .c_str()));
    slots.resize(n);
    for (Slot& sl : slots) {
      sl.layers.resize(M.n_layers);
      for (Layer& L : sl.layers) {
        L.x_in.resize(N * d), L.rstd1.resize(N), L.lse.resize(N * Hl), L.x_mid.resize(N * d), L.rstd2.resize(N);
        L.qkv.resize(N * qkvd()), L.gu.resize(N * 2 * F);
        if (!rc) L.h1.resize(N * d), L.att.resize(N * qd()), L.h2.resize(N * d), L.s.resize(N * F);
      }
      sl.x_fin.resize(N * d), sl.rstd_f.resize(N), sl.h_f.resize(N * d);
      sl.tok.resize(N), sl.tgt.resize(N), sl.mask_d.resize(N), sl.start.resize(N), sl.pos.resize(N);
    }
    if (rc) r_h1.resize(N * d), r_att.resize(N * qd()), r_h2.resize(N * d), r_s.resize(N * F);
    dx.resize(N * d), dh.resize(N * d), tmp.resize(N * d), dxb.resize(N * d);
    if (swaps_dx()) dx_sent.resize(N * d);
    dqkv32.resize(N * qkvd()), dqkv.resize(N * qkvd()), D.resize(N * Hl), datt.resize(N * qd());
    dgu.resize(N * 2 * F), ds.resize(N * F);
    logits32.resize((size_t)CH * Vl), dlogits.resize((size_t)CH * Vl), rowmax.resize(CH), stats.resize(2 * CH);
    B = b, T = t;
    a = &slots[0];
  }

  void use(int k) { a = &slots[k]; }

  // Pipeline messages. Over NCCL a send is posted with the stage's next recv in one group (NcclComm::isend), so
  // neighbours never block in sends to each other; each pass begins with its recv, or with pp->flush() where it
  // has none, before any work that could write a held send's buffer. Staged (ranks share a GPU): device → host
  // → MPI isend (the host copy kept until the send completes, awaited before the slot's next send in that
  // direction), and MPI recv → host → device.
  void send_stage(std::unique_ptr<SendHandle>& pending, const float* src, size_t n, int peer, int tag) {
    if (pending) pending->wait();
    pending = pp->isend(src, n, peer, tag);
  }
  void recv_stage(float* dst, size_t n, int peer, int tag) { pp->recv(dst, n, peer, tag); }
  // A middle stage that sends gradients back over NCCL alternates two dx buffers: in the cool-down's back-to-back
  // backward passes, the receive that starts the next pass goes out in one group with the held send of the
  // previous pass's dx, and must not land in the buffer that send reads. (The last stage posts its held send
  // before it writes dx.)
  bool swaps_dx() const { return !M.first && !M.last && !shared; }
  void wait_sends() {
    for (Slot& sl : slots) {
      if (sl.fwd_send) sl.fwd_send->wait();
      if (sl.bwd_send) sl.bwd_send->wait();
    }
  }

  bf16* h1_of(Layer& L) { return M.topo.recompute ? r_h1.data() : L.h1.data(); }
  bf16* att_of(Layer& L) { return M.topo.recompute ? r_att.data() : L.att.data(); }
  bf16* h2_of(Layer& L) { return M.topo.recompute ? r_h2.data() : L.h2.data(); }
  bf16* s_of(Layer& L) { return M.topo.recompute ? r_s.data() : L.s.data(); }

  // Copies one micro-batch into the current slot (a stage uses the tokens, targets and mask it needs); with
  // segment ids, the in-segment positions (the CPU's segment_positions) and the segment starts t − pos.
  void upload_batch(const int32_t* tokens, const int32_t* targets, const float* mask, const int32_t* seg) {
    const size_t N = (size_t)B * T;
    a->packed = seg != nullptr;
    if (seg) {
      seg_host.resize(2 * N);
      int32_t *st = seg_host.data(), *ps = st + N;
      segment_positions(ps, seg, B, T);
      for (size_t i = 0; i < N; i++) st[i] = (int32_t)(i % T) - ps[i];
      // Pageable source: the call returns once the data is staged, so seg_host may be refilled right after.
      CUDA_CHECK(cudaMemcpyAsync(a->start.data(), st, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
      CUDA_CHECK(cudaMemcpyAsync(a->pos.data(), ps, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    }
    if (M.first)
      CUDA_CHECK(cudaMemcpyAsync(a->tok.data(), tokens, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    if (targets && M.last)
      CUDA_CHECK(cudaMemcpyAsync(a->tgt.data(), targets, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    if (mask && M.last)
      CUDA_CHECK(cudaMemcpyAsync(a->mask_d.data(), mask, N * sizeof(float), cudaMemcpyHostToDevice, stream));
  }

  const int32_t* seg_start() const { return a->packed ? a->start.data() : nullptr; }
  const int32_t* seg_pos() const { return a->packed ? a->pos.data() : nullptr; }

  // The parts of a layer's forward that selective recomputation rebuilds: h1, attention, h2 and SwiGLU.
  void attn_core(Layer& L) {
    bf16* q = L.qkv.data();
    cuda::attention_forward(att_of(L), L.lse.data(), q, q + qd(), q + qd() + kvd(), B, T, M.Hl, M.KVHl, M.hd,
                            qkvd(), qkvd(), qd(), stream, seg_start());
  }

  // Forward of the current slot's micro-batch through this stage: the embedding (first stage) or the previous
  // stage's activations, every layer, then the final norm (h_f, last stage) or a send to the next stage.
  void forward(int tag) {
    const int N = B * T, d = M.cfg.dim, F = M.Fl;
    const size_t Nd = (size_t)N * d;
    std::vector<Layer>& layers = a->layers;
    float* x0 = layers[0].x_in.data();
    if (M.first) {
      pp->flush();
      cuda::embedding_forward(x0, a->tok.data(), W(M.embed_idx), N, d, M.v0, M.Vl, stream);
      tp->all_reduce_sum(x0, Nd);  // g: the vocab-parallel lookup's partial rows
    } else {
      recv_stage(x0, Nd, M.topo.pp_rank - 1, tag);
    }
    for (int l = 0; l < M.n_layers; l++) {
      Layer& L = layers[l];
      cuda::rmsnorm_forward(h1_of(L), L.rstd1.data(), L.x_in.data(), W(lidx(l, LN1)), N, d, M.cfg.norm_eps, stream);
      cuda::matmul_forward(blas, L.qkv.data(), CUDA_R_16BF, h1_of(L), W(lidx(l, Q)), N, d, qkvd(), 0.0f);
      cuda::rope_forward(L.qkv.data(), rope.data(), seg_pos(), N, T, M.Hl, M.hd, qkvd(), stream);
      cuda::rope_forward(L.qkv.data() + qd(), rope.data(), seg_pos(), N, T, M.KVHl, M.hd, qkvd(), stream);
      attn_core(L);
      cuda::matmul_forward(blas, tmp.data(), CUDA_R_32F, att_of(L), W(lidx(l, O)), N, qd(), d, 0.0f);
      tp->all_reduce_sum(tmp.data(), Nd);  // g
      cuda::residual_add(L.x_mid.data(), L.x_in.data(), tmp.data(), Nd, stream);
      cuda::rmsnorm_forward(h2_of(L), L.rstd2.data(), L.x_mid.data(), W(lidx(l, LN2)), N, d, M.cfg.norm_eps, stream);
      cuda::matmul_forward(blas, L.gu.data(), CUDA_R_16BF, h2_of(L), W(lidx(l, GATE)), N, d, 2 * F, 0.0f);
      cuda::swiglu_forward(s_of(L), L.gu.data(), N, F, stream);
      cuda::matmul_forward(blas, tmp.data(), CUDA_R_32F, s_of(L), W(lidx(l, DOWN)), N, F, d, 0.0f);
      tp->all_reduce_sum(tmp.data(), Nd);  // g
      float* x_out = l + 1 < M.n_layers ? layers[l + 1].x_in.data() : a->x_fin.data();
      cuda::residual_add(x_out, L.x_mid.data(), tmp.data(), Nd, stream);
    }
    if (M.last)
      cuda::rmsnorm_forward(a->h_f.data(), a->rstd_f.data(), a->x_fin.data(), W(M.norm_idx), N, d, M.cfg.norm_eps,
                            stream);
    else
      send_stage(a->fwd_send, a->x_fin.data(), Nd, M.topo.pp_rank + 1, tag);
  }

  // Head + vocab-parallel cross-entropy of the current slot in row chunks: Σ mask·CE added to sums[0]; with
  // backward, the head's weight gradient and dh, the gradient of h_f (before the TP reduction).
  void head_loss(float denom, bool backward) {
    const int N = B * T, d = M.cfg.dim, Vl = M.Vl, V = M.cfg.vocab_size, v0 = M.v0;
    for (int r0 = 0; r0 < N; r0 += CH) {
      const int rows = std::min(CH, N - r0);
      cuda::matmul_forward(blas, logits32.data(), CUDA_R_32F, a->h_f.data() + (size_t)r0 * d, W(M.head_idx), rows, d, Vl,
                           0.0f);
      cuda::ce_rowmax(rowmax.data(), logits32.data(), rows, Vl, v0, V, stream);
      tp->all_reduce_max(rowmax.data(), rows);
      cuda::ce_sums(stats.data(), logits32.data(), rowmax.data(), a->tgt.data() + r0, rows, Vl, v0, V, stream);
      tp->all_reduce_sum(stats.data(), 2 * (size_t)rows);
      cuda::ce_finish(backward ? dlogits.data() : nullptr, sums.data(), logits32.data(), rowmax.data(), stats.data(),
                      a->tgt.data() + r0, a->mask_d.data() + r0, denom, rows, Vl, v0, V, stream);
      if (!backward) continue;
      cuda::matmul_backward_weight(blas, G(M.head_idx), dlogits.data(), a->h_f.data() + (size_t)r0 * d, rows, d, Vl);
      cuda::matmul_backward_input(blas, dh.data() + (size_t)r0 * d, CUDA_R_32F, dlogits.data(), W(M.head_idx), rows,
                                  d, Vl, 0.0f);
    }
  }

  // Last stage: head + vocab-parallel cross-entropy in row chunks, Σ mask·CE added to sums[0]; other stages
  // receive the gradient of their output from the next stage. With backward, this stage's backward pass follows,
  // accumulating parameter gradients (fp32) scaled by 1/denom, and ends in the embedding (first stage) or a send
  // of the input's gradient to the previous stage.
  void loss_backward(float denom, bool backward, int tag) {
    const int N = B * T, d = M.cfg.dim, F = M.Fl;
    const size_t Nd = (size_t)N * d;
    if (M.last) {
      pp->flush();
      head_loss(denom, backward);
      if (!backward) return;
      tp->all_reduce_sum(dh.data(), Nd);  // f backward: the head is vocab (column) parallel
      cuda::rmsnorm_backward(dx.data(), G(M.norm_idx), dh.data(), a->x_fin.data(), W(M.norm_idx), a->rstd_f.data(),
                             N, d, false, stream);
    } else {
      if (!backward) return;
      if (swaps_dx()) std::swap(dx, dx_sent);
      recv_stage(dx.data(), Nd, M.topo.pp_rank + 1, tag);
    }
    std::vector<Layer>& layers = a->layers;
    for (int l = M.n_layers - 1; l >= 0; l--) {
      Layer& L = layers[l];
      bf16* q = L.qkv.data();
      if (M.topo.recompute) {  // rebuild what forward did not keep
        cuda::rmsnorm_forward(r_h1.data(), L.rstd1.data(), L.x_in.data(), W(lidx(l, LN1)), N, d, M.cfg.norm_eps,
                              stream);
        attn_core(L);
        cuda::rmsnorm_forward(r_h2.data(), L.rstd2.data(), L.x_mid.data(), W(lidx(l, LN2)), N, d, M.cfg.norm_eps,
                              stream);
        cuda::swiglu_forward(r_s.data(), L.gu.data(), N, F, stream);
      }
      // MLP: x_out = x_mid + s·Wdᵀ
      cuda::cast_to_bf16(dxb.data(), dx.data(), Nd, stream);
      cuda::matmul_backward_weight(blas, G(lidx(l, DOWN)), dxb.data(), s_of(L), N, F, d);
      cuda::matmul_backward_input(blas, ds.data(), CUDA_R_16BF, dxb.data(), W(lidx(l, DOWN)), N, F, d, 0.0f);
      cuda::swiglu_backward(dgu.data(), ds.data(), L.gu.data(), N, F, stream);
      cuda::matmul_backward_weight(blas, G(lidx(l, GATE)), dgu.data(), h2_of(L), N, d, 2 * F);
      cuda::matmul_backward_input(blas, dh.data(), CUDA_R_32F, dgu.data(), W(lidx(l, GATE)), N, d, 2 * F, 0.0f);
      tp->all_reduce_sum(dh.data(), Nd);  // f backward
      cuda::rmsnorm_backward(dx.data(), G(lidx(l, LN2)), dh.data(), L.x_mid.data(), W(lidx(l, LN2)), L.rstd2.data(),
                             N, d, true, stream);
      // Attention: x_mid = x_in + att·Woᵀ
      cuda::cast_to_bf16(dxb.data(), dx.data(), Nd, stream);
      cuda::matmul_backward_weight(blas, G(lidx(l, O)), dxb.data(), att_of(L), N, qd(), d);
      cuda::matmul_backward_input(blas, datt.data(), CUDA_R_16BF, dxb.data(), W(lidx(l, O)), N, qd(), d, 0.0f);
      float* dq = dqkv32.data();
      cuda::attention_backward(dq, dq + qd(), dq + qd() + kvd(), qkvd(), D.data(), datt.data(), q, q + qd(),
                               q + qd() + kvd(), att_of(L), L.lse.data(), B, T, M.Hl, M.KVHl, M.hd, qkvd(), qkvd(),
                               qd(), stream, seg_start());
      cuda::rope_backward(dqkv.data(), qkvd(), dq, qkvd(), rope.data(), N, T, M.Hl, M.hd, stream, seg_pos());
      cuda::rope_backward(dqkv.data() + qd(), qkvd(), dq + qd(), qkvd(), rope.data(), N, T, M.KVHl, M.hd, stream,
                          seg_pos());
      cuda::cast_rows_to_bf16(dqkv.data() + qd() + kvd(), qkvd(), dq + qd() + kvd(), qkvd(), N, kvd(), stream);
      cuda::matmul_backward_weight(blas, G(lidx(l, Q)), dqkv.data(), h1_of(L), N, d, qkvd());
      cuda::matmul_backward_input(blas, dh.data(), CUDA_R_32F, dqkv.data(), W(lidx(l, Q)), N, d, qkvd(), 0.0f);
      tp->all_reduce_sum(dh.data(), Nd);  // f backward
      cuda::rmsnorm_backward(dx.data(), G(lidx(l, LN1)), dh.data(), L.x_in.data(), W(lidx(l, LN1)), L.rstd1.data(), N,
                             d, true, stream);
    }
    if (M.first)
      cuda::embedding_backward(G(M.embed_idx), dx.data(), a->tok.data(), N, d, M.v0, M.Vl, stream);
    else
      send_stage(a->bwd_send, dx.data(), Nd, M.topo.pp_rank - 1, tag);
  }

  double read_loss() {
    double v = 0;
    CUDA_CHECK(cudaMemcpyAsync(&v, sums.data(), sizeof v, cudaMemcpyDeviceToHost, stream));
    sync();
    return v;
  }

  void zero_loss() { CUDA_CHECK(cudaMemsetAsync(sums.data(), 0, sizeof(double), stream)); }

  // ---- DeviceBackend -----------------------------------------------------------------------------------------
  double forward_backward(const int32_t* tokens, const int32_t* targets, const float* mask, int b, int t,
                          float denom, const int32_t* seg) override {
    enter();
    MT_CHECK(M.topo.pp == 1, "forward_backward runs one stage; with pp %d use train_step", M.topo.pp);
    ensure_acts(b, t, 1);
    use(0);
    upload_batch(tokens, targets, mask, seg);
    zero_loss();
    forward(fwd_tag(0));
    loss_backward(denom, true, bwd_tag(0));
    return read_loss();
  }

  // The same schedule as the CPU model's train_step (run_1f1b); the loss stays on the device until the end.
  void train_step(const int32_t* tokens, const int32_t* targets, const float* mask, int n_micro, int b, int t,
                  mt_step_result* out, const int32_t* seg) override {
    enter();
    const size_t per = (size_t)b * t;
    const double count = M.batch_token_count(mask, per * n_micro);
    ensure_acts(b, t, pipeline_slots(n_micro, M.topo.pp, M.topo.pp_rank));
    CUDA_CHECK(cudaMemsetAsync(grad.data(), 0, grad.bytes(), stream));
    zero_loss();
    run_1f1b(
        n_micro, M.topo.pp, M.topo.pp_rank,
        [&](int i, int k) {
          use(k);
          upload_batch(tokens + i * per, targets + i * per, mask + i * per, seg ? seg + i * per : nullptr);
          forward(fwd_tag(i));
        },
        [&](int i, int k) {
          use(k);
          loss_backward((float)count, true, bwd_tag(i));
        });
    wait_sends();
    M.finish_step(read_loss(), count, out);
    profiled_steps++;
  }

  bool optimizer_step(float* grad_norm, float* lr_out) override {
    enter();
    const bool zero = M.topo.zero1 && M.topo.dp > 1;
    float* grads = grad.data();
    if (zero) {
      dp->reduce_scatter_sum(grad.data(), gown.data(), M.chunk);
      grads = gown.data();
    } else {
      dp->all_reduce_sum(grad.data(), M.flat);
    }
    const size_t c0 = M.chunk0, c1 = M.chunk0 + M.chunk;
    // Tensors replicated over TP (the norm weights) get their gradients from atomics, whose order differs between
    // ranks, and each TP rank reduces them over its own DP communicator: take TP rank 0's reduced gradients, so
    // the replicas stay identical. TP peers share the DP rank, so their [c0, c1) ranges line up.
    if (M.topo.tp > 1)
      for (const ParamInfo& p : M.params) {
        const size_t b = std::max(c0, p.offset), e = std::min(c1, p.offset + p.size);
        if (p.split_dim < 0 && b < e) tp->broadcast(grads + (b - c0), e - b, 0);
      }
    // Σ g² over this rank's range, each distinct parameter once (TP-replicated tensors on TP rank 0).
    CUDA_CHECK(cudaMemsetAsync(sums.data() + 1, 0, sizeof(double), stream));
    for (const ParamInfo& p : M.params) {
      if (p.split_dim < 0 && M.topo.tp_rank != 0) continue;
      const size_t b = std::max(c0, p.offset), e = std::min(c1, p.offset + p.stored);
      if (b < e) cuda::sum_squares(sums.data() + 1, grads + (b - c0), e - b, stream);
    }
    double sq = 0;
    CUDA_CHECK(cudaMemcpyAsync(&sq, sums.data() + 1, sizeof sq, cudaMemcpyDeviceToHost, stream));
    sync();
    (zero ? M.world : M.mp_comm)->all_reduce_sum(&sq, 1);  // host MPI: a scalar
    const double norm = std::sqrt(sq);
    *grad_norm = (float)norm;
    if (!std::isfinite(norm)) {
      *lr_out = lr_at(M.opt, M.step + 1);
      return false;
    }
    const double coef = M.opt.grad_clip > 0 ? M.opt.grad_clip / (norm + 1e-6) : 1.0;
    const float grad_scale = coef < 1.0 ? (float)coef : 1.0f;
    M.step += 1;
    const float lr = lr_at(M.opt, M.step);
    *lr_out = lr;
    const float bc1 = (float)(1.0 - std::pow((double)M.opt.beta1, (double)M.step));
    const float bc2 = (float)(1.0 - std::pow((double)M.opt.beta2, (double)M.step));
    for (const ParamInfo& p : M.params) {
      const size_t b = std::max(c0, p.offset), e = std::min(c1, p.offset + p.stored);
      if (b >= e) continue;
      const float wd = p.decay ? M.opt.weight_decay : 0.0f;
      cuda::adamw(master.data() + b, param.data() + b, grads + (b - c0), adam_m.data() + (b - c0),
                  adam_v.data() + (b - c0), e - b, grad_scale, lr, M.opt.beta1, M.opt.beta2, bc1, bc2, M.opt.eps, wd,
                  stream);
    }
    if (zero) {
      dp->all_gather(master.data() + c0, master.data(), M.chunk);
      cuda::cast_to_bf16(param.data(), master.data(), total, stream);
    }
    sync();
    return true;
  }

  void eval_loss(const int32_t* tokens, const int32_t* targets, const float* mask, int b, int t, double* loss_sum,
                 double* count, const int32_t* seg) override {
    enter();
    ensure_acts(b, t, 1);
    use(0);
    upload_batch(tokens, targets, mask, seg);
    zero_loss();
    forward(fwd_tag(0));
    loss_backward(1.0f, false, bwd_tag(0));
    wait_sends();
    M.finish_eval(read_loss(), mask, (size_t)b * t, loss_sum, count);
  }

  // Logits of hidden rows h[rows, d] (bf16) into host out[rows, V], `ch` rows at a time through the fp32 chunk
  // lg[ch, Vl] (≥ 1 row).
  void head_to_host(const bf16* h, int rows, float* out, float* lg, int ch) {
    const int d = M.cfg.dim, Vl = M.Vl, V = M.cfg.vocab_size;
    ch = std::min(ch, rows);
    MT_CHECK(ch >= 1, "logits of %d rows through a chunk of %d", rows, ch);
    for (int r0 = 0; r0 < rows; r0 += ch) {
      const int n = std::min(ch, rows - r0);
      cuda::matmul_forward(blas, lg, CUDA_R_32F, h + (size_t)r0 * d, W(M.head_idx), n, d, Vl, 0.0f);
      CUDA_CHECK(cudaMemcpy2DAsync(out + (size_t)r0 * V, V * sizeof(float), lg, Vl * sizeof(float), V * sizeof(float),
                                   n, cudaMemcpyDeviceToHost, stream));
      sync();
    }
  }

  void logits(const int32_t* tokens, int b, int t, float* out, const int32_t* seg) override {
    enter();
    MT_CHECK(M.topo.tp == 1 && M.topo.pp == 1, "logits need the whole model on one rank (tp %d, pp %d)", M.topo.tp,
             M.topo.pp);
    ensure_acts(b, t, 1);
    use(0);
    upload_batch(tokens, nullptr, nullptr, seg);
    forward(fwd_tag(0));
    head_to_host(a->h_f.data(), b * t, out, logits32.data(), CH);  // the loss's chunk (ensure_acts)
  }

  void zero_grad() override {
    enter();
    CUDA_CHECK(cudaMemsetAsync(grad.data(), 0, grad.bytes(), stream));
    sync();
  }

  float* buffer(int kind, size_t offset, size_t n) {
    const bool flat_buf = kind == MT_TENSOR_PARAM || kind == MT_TENSOR_GRAD;
    const size_t limit = flat_buf ? total : M.chunk;
    MT_CHECK(offset + n <= limit, "device read/write of [%zu, %zu) is outside the buffer of %zu floats", offset,
             offset + n, limit);
    switch (kind) {
      case MT_TENSOR_PARAM: return master.data() + offset;
      case MT_TENSOR_GRAD: return grad.data() + offset;
      case MT_TENSOR_ADAM_M: return adam_m.data() + offset;
      case MT_TENSOR_ADAM_V: return adam_v.data() + offset;
    }
    throw Error(MT_ERR_INVALID_ARGUMENT, format("tensor kind %d is not one of 0..3", kind));
  }

  void read(int kind, size_t offset, float* dst, size_t n) override {
    enter();
    CUDA_CHECK(cudaMemcpyAsync(dst, buffer(kind, offset, n), n * sizeof(float), cudaMemcpyDeviceToHost, stream));
    sync();
  }

  void write(int kind, size_t offset, const float* src, size_t n) override {
    enter();
    float* at = buffer(kind, offset, n);
    CUDA_CHECK(cudaMemcpyAsync(at, src, n * sizeof(float), cudaMemcpyHostToDevice, stream));
    if (kind == MT_TENSOR_PARAM) cuda::cast_to_bf16(param.data() + offset, at, n, stream);
    sync();
  }

  void comm_bytes(double* tp_bytes, double* dp_bytes, double* pp_bytes, bool reset) override {
    *tp_bytes = tp->bytes_sent, *dp_bytes = dp->bytes_sent, *pp_bytes = pp->bytes_sent;
    if (reset) tp->bytes_sent = dp->bytes_sent = pp->bytes_sent = 0;
  }
  bool comm_staged() const override { return shared; }

  std::unique_ptr<DeviceKv> kv_create(int max_seqs, int max_len) override {
    enter();
    const size_t n = (size_t)max_seqs * max_len * kvd();
    const std::string problem = fit_problem(2.0 * n * sizeof(bf16) * M.n_layers,
                                            format("a KV cache of %d sequences x %d tokens", max_seqs, max_len).c_str());
    if (!problem.empty()) throw Error(MT_ERR_OUT_OF_MEMORY, problem);
    auto kv = std::make_unique<CudaKv>();
    kv->k.resize(M.n_layers), kv->v.resize(M.n_layers);
    for (int l = 0; l < M.n_layers; l++) kv->k[l].resize(n), kv->v[l].resize(n);
    return kv;
  }

  void kv_copy(KvCache& c, int src, int dst, int length) override {
    enter();
    auto& kv = static_cast<CudaKv&>(*c.dev);
    const size_t row = (size_t)kvd(), at_s = (size_t)src * c.max_len * row, at_d = (size_t)dst * c.max_len * row;
    for (int l = 0; l < M.n_layers; l++) {
      CUDA_CHECK(cudaMemcpyAsync(kv.k[l].data() + at_d, kv.k[l].data() + at_s, length * row * sizeof(bf16),
                                 cudaMemcpyDeviceToDevice, stream));
      CUDA_CHECK(cudaMemcpyAsync(kv.v[l].data() + at_d, kv.v[l].data() + at_s, length * row * sizeof(bf16),
                                 cudaMemcpyDeviceToDevice, stream));
    }
    sync();
  }

  void decode(KvCache& c, const int32_t* seq, const int32_t* tokens, const uint8_t* want, int rows,
              float* logits_out) override {
    enter();
    MT_CHECK(M.topo.tp == 1 && M.topo.pp == 1, "decoding needs the whole model on one rank (tp %d, pp %d)", M.topo.tp,
             M.topo.pp);
    auto& kv = static_cast<CudaKv&>(*c.dev);
    MT_CHECK(rows <= 65535, "a decode call of %d rows exceeds the CUDA backend's 65535 (split the prefill)", rows);
    const int d = M.cfg.dim, F = M.Fl;
    const size_t Nd = (size_t)rows * d;
    std::vector<int32_t> pos(rows);
    std::vector<int> next(c.len);
    for (int r = 0; r < rows; r++) {
      MT_CHECK(seq[r] >= 0 && seq[r] < c.max_seqs, "row %d: sequence %d is outside [0, %d)", r, seq[r], c.max_seqs);
      MT_CHECK(next[seq[r]] < c.max_len, "row %d: sequence %d is full (%d tokens)", r, seq[r], c.max_len);
      MT_CHECK(next[seq[r]] < M.cfg.max_seq, "row %d: position %d exceeds the model's max_seq %d", r, next[seq[r]],
               M.cfg.max_seq);
      pos[r] = next[seq[r]]++;
    }
    float* x = grow(dec_x, Nd);
    float* t32 = grow(dec_tmp, Nd);
    float* rstd = grow(dec_rstd, (size_t)rows);
    bf16* h = grow(dec_h, Nd);
    bf16* qkv = grow(dec_qkv, (size_t)rows * qkvd());
    bf16* att = grow(dec_att, (size_t)rows * qd());
    bf16* gu = grow(dec_gu, (size_t)rows * 2 * F);
    bf16* sw = grow(dec_s, (size_t)rows * F);
    int32_t* tk = grow(dec_tok, (size_t)rows);
    int32_t* sq = grow(seq_d, (size_t)rows);
    int32_t* ps = grow(pos_d, (size_t)rows);
    CUDA_CHECK(cudaMemcpyAsync(tk, tokens, rows * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaMemcpyAsync(sq, seq, rows * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaMemcpyAsync(ps, pos.data(), rows * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    cuda::embedding_forward(x, tk, W(M.embed_idx), rows, d, M.v0, M.Vl, stream);
    for (int l = 0; l < M.n_layers; l++) {
      cuda::rmsnorm_forward(h, rstd, x, W(lidx(l, LN1)), rows, d, M.cfg.norm_eps, stream);
      cuda::matmul_forward(blas, qkv, CUDA_R_16BF, h, W(lidx(l, Q)), rows, d, qkvd(), 0.0f);
      cuda::rope_forward(qkv, rope.data(), ps, rows, 1, M.Hl, M.hd, qkvd(), stream);
      cuda::rope_forward(qkv + qd(), rope.data(), ps, rows, 1, M.KVHl, M.hd, qkvd(), stream);
      cuda::kv_store(kv.k[l].data(), kv.v[l].data(), qkv, qkvd(), qd(), qd() + kvd(), sq, ps, rows, kvd(), c.max_len,
                     stream);
      cuda::attention_cached(att, qkv, qkvd(), kv.k[l].data(), kv.v[l].data(), sq, ps, rows, M.Hl, M.KVHl, M.hd,
                             c.max_len, stream);
      cuda::matmul_forward(blas, t32, CUDA_R_32F, att, W(lidx(l, O)), rows, qd(), d, 0.0f);
      cuda::residual_add(x, x, t32, Nd, stream);
      cuda::rmsnorm_forward(h, rstd, x, W(lidx(l, LN2)), rows, d, M.cfg.norm_eps, stream);
      cuda::matmul_forward(blas, gu, CUDA_R_16BF, h, W(lidx(l, GATE)), rows, d, 2 * F, 0.0f);
      cuda::swiglu_forward(sw, gu, rows, F, stream);
      cuda::matmul_forward(blas, t32, CUDA_R_32F, sw, W(lidx(l, DOWN)), rows, F, d, 0.0f);
      cuda::residual_add(x, x, t32, Nd, stream);
    }
    for (int r = 0; r < rows; r++) c.len[seq[r]] = std::max(c.len[seq[r]], pos[r] + 1);
    std::vector<int32_t> idx;
    for (int r = 0; r < rows; r++)
      if (!want || want[r]) idx.push_back(r);
    if (idx.empty()) return sync();
    int32_t* id = grow(idx_d, idx.size());
    CUDA_CHECK(cudaMemcpyAsync(id, idx.data(), idx.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    cuda::gather_rows(t32, x, id, (int)idx.size(), d, stream);
    cuda::rmsnorm_forward(h, rstd, t32, W(M.norm_idx), (int)idx.size(), d, M.cfg.norm_eps, stream);
    // A chunk of its own (decoding may come before any forward pass sized the loss's): up to 64 MiB of rows.
    const int ch = (int)std::clamp<size_t>(((size_t)64 << 20) / (4 * (size_t)M.Vl), 1, idx.size());
    head_to_host(h, (int)idx.size(), logits_out, grow(dec_logits, (size_t)ch * M.Vl), ch);
  }
};

}  // namespace

void cuda_check_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  if (err != cudaSuccess)
    throw Error(MT_ERR_INVALID_ARGUMENT,
                format("no usable CUDA device: cudaGetDeviceCount failed: %s (%s; libmeditron uses CUDA runtime "
                       "%d.%d: is there an NVIDIA GPU and a driver that supports it?)",
                       cudaGetErrorString(err), cudaGetErrorName(err), runtime / 1000, runtime % 1000 / 10));
  if (count == 0) throw Error(MT_ERR_INVALID_ARGUMENT, "no usable CUDA device: cudaGetDeviceCount found 0 devices");
}

std::unique_ptr<DeviceBackend> make_cuda_backend(Model& m) { return std::make_unique<CudaBackend>(m); }

std::string cuda_info() {
  int runtime = 0, count = 0;
  cudaRuntimeGetVersion(&runtime);
  std::string s = format("cuda=runtime-%d.%d", runtime / 1000, runtime % 1000 / 10);
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a machine without a driver
    return s + " devices=0";
  }
  s += format(" devices=%d", count);
  cudaDeviceProp prop;
  if (count > 0 && cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    s += format(" gpu0=\"%s\" sm_%d%d %.0fGiB", prop.name, prop.major, prop.minor, prop.totalGlobalMem / GiB);
  return s;
}

}  // namespace mt
