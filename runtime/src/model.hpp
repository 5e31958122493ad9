// model.hpp — the Llama-2 model on one rank of a DP×TP×PP grid: its parameter shards (flat fp32 buffers with a
// name table), activations per in-flight micro-batch, the forward/backward of its pipeline stage, the 1F1B
// schedule, gradient synchronisation and the AdamW step (optionally ZeRO-1 sharded over DP).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "comm.hpp"
#include "device.hpp"
#include "meditron.h"

namespace mt {

// Where this rank sits in the grid (Megatron order: rank = pp·D·T + dp·T + tp).
struct Topology {
  int tp = 1, pp = 1, dp = 1;
  bool zero1 = false;
  int tp_rank = 0, pp_rank = 0, dp_rank = 0;
  int device = MT_DEVICE_CPU;
  bool recompute = false;  // selective activation recomputation (CUDA backend)
};

// One parameter tensor (this rank's shard) inside the flat buffers. `shape`/`size` are what callers see;
// `stored` may be larger (vocabulary padding rows at the tail). The shard covers
// full[slice_start : slice_start + shape[split_dim]] along `split_dim` of `full_shape` (split_dim −1: the
// whole tensor, replicated over TP).
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape, full_shape;
  int split_dim = -1;
  int64_t slice_start = 0;
  size_t offset = 0, size = 0, stored = 0;
  bool decay = true;  // 1-D tensors (norm weights) get no weight decay
};

// Activations of one micro-batch on this stage, kept for its backward pass; N = B·T rows.
struct Activations {
  int B = 0, T = 0;
  // qkv: the fused projection [N, (Hl + 2·KVHl)·hd], row n = q | k | v (q, k after RoPE);
  // gu: the fused gate|up projection [N, 2·Fl]; s = silu(g) ∘ u [N, Fl].
  struct Layer {
    std::vector<float> x_in, rstd1, h1, qkv, att, lse, x_mid, rstd2, h2, gu, s;
  };
  std::vector<Layer> layers;
  std::vector<float> x_fin, rstd_f, h_f;
  std::vector<float> dx_send;  // gradient of this stage's input, kept until the send to the previous stage ends
  // Packed rows: segment ids [B, T] of this micro-batch (the caller's buffer, alive for the call; null: one
  // segment per row) and each token's RoPE position within its segment.
  const int32_t* seg = nullptr;
  std::vector<int32_t> pos;
  std::unique_ptr<SendHandle> fwd_send, bwd_send;
};

struct Model;

// The pipeline schedule of a training step, shared by the CPU model and the device backends: non-interleaved
// 1F1B over M micro-batches on stage s of P (warm-up forwards, then one forward + one backward, then cool-down
// backwards). fwd(i, k) and bwd(i, k) run micro-batch i with activation slot k = i mod pipeline_slots(M, P, s).
int pipeline_slots(int M, int P, int s);
template <class Fwd, class Bwd>
void run_1f1b(int M, int P, int s, Fwd&& fwd, Bwd&& bwd) {
  const int warm = P - s - 1 < M ? P - s - 1 : M, slots = pipeline_slots(M, P, s);
  for (int i = 0; i < warm; i++) fwd(i, i % slots);
  for (int i = warm; i < M; i++) {
    fwd(i, i % slots);
    bwd(i - warm, (i - warm) % slots);
  }
  for (int i = M - warm; i < M; i++) bwd(i, i % slots);
}
// Message tags of micro-batch i between pipeline stages: activations forward, their gradients backward.
inline int fwd_tag(int i) { return 2 * i; }
inline int bwd_tag(int i) { return 2 * i + 1; }

// Segment ids of packed rows, n = rows·T: non-decreasing along each row; throws mt::Error naming the index.
void check_segment_ids(const int32_t* seg, size_t n, int T);

// Keys (after RoPE) and values of up to `max_seqs` sequences of up to `max_len` tokens, per layer
// [max_seqs, max_len, KVH·hd], for decoding; len[s] tokens of sequence s are filled.
struct KvCache {
  const Model* model = nullptr;
  int max_seqs = 0, max_len = 0;
  std::vector<int> len;
  std::vector<std::vector<float>> k, v;
  std::unique_ptr<DeviceKv> dev;  // the device's buffers instead of k, v (CUDA models)
};

struct Model {
  uint64_t magic = 0x4d4544495452ull;  // "MEDITR"
  mt_model_config cfg{};
  mt_optim_config opt{};
  Topology topo;
  std::unique_ptr<Comm> tp_comm, dp_comm, pp_comm, mp_comm, world;
  int hd = 0;                  // head dim
  int Vp = 0;                  // padded vocabulary (multiple of 128·tp)
  int Hl = 0, KVHl = 0, Fl = 0, Vl = 0, v0 = 0;  // this rank's heads, kv heads, ffn width, vocab rows, first id
  int layer0 = 0, n_layers = 0;                  // this stage's layers [layer0, layer0 + n_layers)
  bool first = true, last = true;                // first / last pipeline stage
  std::vector<ParamInfo> params;
  std::unordered_map<std::string, int> by_name;
  int embed_idx = -1, norm_idx = -1, head_idx = -1, layer_idx0 = 0;
  std::vector<float> p, g;     // parameters and gradients (flat, padded to a multiple of dp for ZeRO-1)
  std::vector<float> m, v;     // Adam moments: the whole flat buffer, or this DP rank's chunk under ZeRO-1
  size_t flat = 0;             // floats of real parameters in p
  size_t chunk = 0, chunk0 = 0;  // optimizer chunk size and offset (ZeRO-1); chunk = flat without it
  int64_t step = 0;            // optimizer steps taken
  std::vector<float> rope;     // [max_seq, hd/2, {cos, sin}]
  std::vector<Activations> slots;  // one per in-flight micro-batch
  std::vector<float> dx, dh, dqkv, datt, dgu, ds;  // backward scratch, reused across layers and micro-batches
  // CUDA models: the backend holding every buffer; p, g, m, v above stay empty after creation.
  std::unique_ptr<DeviceBackend> dev;

  Model(const mt_model_config& c, const mt_optim_config& o, const mt_topology* t);

  const ParamInfo& param(const std::string& name) const;
  float* P(int idx) { return p.data() + params[idx].offset; }
  float* G(int idx) { return g.data() + params[idx].offset; }

  // Checks ids in [0, vocab) and sizes; throws mt::Error naming the offending index. `seg` (optional): segment
  // ids, non-decreasing along each row of T.
  void check_batch(const int32_t* tokens, const int32_t* targets, const float* mask, size_t n, int B,
                   int T, const int32_t* seg = nullptr) const;
  // `seg` below: optional segment ids laid out like `tokens` (packed rows; null: one sequence per row).
  // One training step over this rank's n_micro micro-batches (1F1B over the pipeline); returns the global
  // mean loss and fills grad_norm / lr.
  void train_step(const int32_t* tokens, const int32_t* targets, const float* mask, int n_micro, int B, int T,
                  mt_step_result* out, const int32_t* seg = nullptr);
  // Forward + backward of one micro-batch (single stage), accumulating gradients with 1/denom; Σ mask·CE.
  double forward_backward(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T,
                          float denom, const int32_t* seg = nullptr);
  // Global Σ mask·CE and Σ mask of one batch, forward only through the pipeline.
  void eval_loss(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T, double* loss_sum,
                 double* count, const int32_t* seg = nullptr);
  // Final hidden states of [B, T] tokens (single stage only): leaves them in slots[0].h_f.
  void forward_hidden(const int32_t* tokens, int B, int T, const int32_t* seg = nullptr);
  // Appends rows (seq[i], tokens[i]) to the cache — rows of one sequence consecutive and in order, each at
  // the next position of its sequence — and writes the logits of the rows with want[i] != 0 (all when
  // want is null), compactly in row order, to `logits` (true vocabulary). Single rank only.
  void decode(KvCache& kv, const int32_t* seq, const int32_t* tokens, const uint8_t* want, int rows, float* logits);
  // Synchronise gradients over DP, clip by the global norm, AdamW; returns {grad_norm, lr}. A non-finite norm
  // skips the update (returns false).
  bool optimizer_step(float* grad_norm, float* lr);
  // Σ of the loss mask over this rank's n tokens and all DP ranks: the global batch's token count (> 0).
  double batch_token_count(const float* mask, size_t n);
  // The end of train_step on every backend: `loss_sum` (this rank's Σ mask·CE; counted on the last stage's TP
  // rank 0 only) summed over the world, the result filled in and the optimizer step taken.
  void finish_step(double loss_sum, double count, mt_step_result* out);
  // The end of eval_loss on every backend: `local` (this rank's Σ mask·CE, counted as in finish_step) and the
  // mask's token count of n tokens, each summed over the ranks that hold distinct parts.
  void finish_eval(double local, const float* mask, size_t n, double* loss_sum, double* count);

 private:
  void setup_topology(const mt_topology* t);
  void add_param(const std::string& name, std::vector<int64_t> full, int split_dim, int64_t start, int64_t len,
                 size_t stored, bool decay);
  void init_params();
  Activations& slot(int i, int B, int T);
  void ensure_scratch(int B, int T);
  void stage_forward(Activations& a, const int32_t* tokens, int tag, const int32_t* seg = nullptr);
  double stage_loss_backward(Activations& a, const int32_t* tokens, const int32_t* targets, const float* mask,
                             float denom, bool backward, int tag);
  double global_norm_squared(const float* grads, size_t begin, size_t end);
};

}  // namespace mt
