// model.hpp — the Llama-2 model: parameters (flat fp32 buffers with a name table), activations, the
// forward/backward over all layers, and the AdamW step.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "meditron.h"

namespace mt {

// One parameter tensor inside the flat buffers. `size` is what callers see (HF shape); `stored` may be
// larger (embedding and head rows padded to the padded vocabulary; padding rows are the tail).
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0, size = 0, stored = 0;
  bool decay = true;  // 1-D tensors (norm weights) get no weight decay
};

// Per-micro-batch activations kept for the backward pass, sized for N = B·T rows.
struct Activations {
  int B = 0, T = 0;
  // qkv: the fused projection [N, (H + 2·KVH)·hd], row n = q | k | v (q, k after RoPE);
  // gu: the fused gate|up projection [N, 2F]; s = silu(g) ∘ u [N, F].
  struct Layer {
    std::vector<float> x_in, rstd1, h1, qkv, att, lse, x_mid, rstd2, h2, gu, s;
  };
  std::vector<Layer> layers;
  std::vector<float> x_fin, rstd_f, h_f;
  // gradient scratch, reused across layers
  std::vector<float> dx, dh, dqkv, datt, dgu, ds;
};

struct Model {
  uint64_t magic = 0x4d4544495452ull;  // "MEDITR"
  mt_model_config cfg{};
  mt_optim_config opt{};
  int hd = 0;   // head dim
  int Vp = 0;   // padded vocabulary
  std::vector<ParamInfo> params;
  std::unordered_map<std::string, int> by_name;
  std::vector<float> p, g, m, v;  // parameters, gradients, Adam first and second moments (flat)
  int64_t step = 0;               // optimizer steps taken
  std::vector<float> rope;        // [max_seq, hd/2, {cos, sin}]
  Activations acts;

  Model(const mt_model_config& c, const mt_optim_config& o);

  const ParamInfo& param(const std::string& name) const;
  float* P(int idx) { return p.data() + params[idx].offset; }
  float* G(int idx) { return g.data() + params[idx].offset; }

  // Checks ids in [0, vocab) and sizes; throws mt::Error naming the offending index.
  void check_batch(const int32_t* tokens, const int32_t* targets, const float* mask, size_t n, int B,
                   int T) const;
  // Runs the forward pass over [B, T] tokens, storing activations; leaves the final hidden in acts.h_f.
  void forward(const int32_t* tokens, int B, int T);
  // Σ mask·CE of the last forward; when `backward` is set also accumulates all gradients with 1/denom.
  double loss_and_backward(const int32_t* tokens, const int32_t* targets, const float* mask, float denom,
                           bool backward);
  // Clip + AdamW; returns {grad_norm, lr}.
  void optimizer_step(float* grad_norm, float* lr);

 private:
  void add_param(const std::string& name, std::vector<int64_t> shape, size_t stored, bool decay);
  void init_params();
  void ensure_activations(int B, int T);
};

}  // namespace mt
