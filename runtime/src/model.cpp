// model.cpp — Llama-2 forward/backward over all layers (see kernels.hpp for each layer's math).
//
//   x   = wte[tokens]                                              [N, d]
//   for each layer:
//     h1  = rmsnorm(x, input_layernorm)
//     q, k, v = h1·Wqᵀ, h1·Wkᵀ, h1·Wvᵀ ;  q, k = rope(q), rope(k)
//     x   = x + attention(q, k, v)·Woᵀ
//     h2  = rmsnorm(x, post_attention_layernorm)
//     x   = x + (silu(h2·Wgᵀ) ∘ h2·Wuᵀ)·Wdᵀ
//
// q/k/v and gate/up are each computed by ONE GEMM: their weights are adjacent in the flat parameter buffer
// (HF order q, k, v and gate, up), so [Wq; Wk; Wv] and [Wg; Wu] are contiguous matrices as they stand.
//   h_f = rmsnorm(x, norm);  loss = masked mean CE(h_f·W_headᵀ, targets)
#include "model.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "kernels.hpp"
#include "optim.hpp"

namespace mt {

namespace {
// Index of each tensor of layer l inside Model::params (HF state-dict order).
enum LayerSlot { Q = 0, K, VV, O, GATE, UP, DOWN, LN1, LN2, SLOTS };
int layer_param(int l, int slot) { return 1 + l * SLOTS + slot; }

void check_config(const mt_model_config& c) {
  MT_CHECK(c.struct_size == (int32_t)sizeof(mt_model_config), "mt_model_config.struct_size is %d, expected %d",
           c.struct_size, (int)sizeof(mt_model_config));
  MT_CHECK(c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.ffn_dim > 0 &&
               c.vocab_size > 0 && c.max_seq > 0,
           "model sizes must be positive (dim %d, n_layers %d, n_heads %d, n_kv_heads %d, ffn_dim %d, "
           "vocab_size %d, max_seq %d)",
           c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim, c.vocab_size, c.max_seq);
  MT_CHECK(c.dim % c.n_heads == 0, "dim %d is not divisible by n_heads %d", c.dim, c.n_heads);
  MT_CHECK(c.n_heads % c.n_kv_heads == 0, "n_kv_heads %d does not divide n_heads %d", c.n_kv_heads, c.n_heads);
  MT_CHECK((c.dim / c.n_heads) % 2 == 0, "head_dim %d must be even for RoPE", c.dim / c.n_heads);
  MT_CHECK(std::isfinite(c.norm_eps) && c.norm_eps > 0, "norm_eps must be > 0 (got %g)", c.norm_eps);
  MT_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0, "rope_theta must be > 0 (got %g)", c.rope_theta);
  MT_CHECK(std::isfinite(c.init_std) && c.init_std >= 0, "init_std must be >= 0 (got %g)", c.init_std);
}
}  // namespace

Model::Model(const mt_model_config& c, const mt_optim_config& o) : cfg(c), opt(o) {
  check_config(c);
  optim_config_check(o);
  hd = c.dim / c.n_heads;
  Vp = (c.vocab_size + 127) / 128 * 128;
  const int64_t d = c.dim, qd = (int64_t)c.n_heads * hd, kvd = (int64_t)c.n_kv_heads * hd, F = c.ffn_dim;
  add_param("model.embed_tokens.weight", {c.vocab_size, d}, (size_t)Vp * d, true);
  for (int l = 0; l < c.n_layers; l++) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    add_param(pre + "self_attn.q_proj.weight", {qd, d}, 0, true);
    add_param(pre + "self_attn.k_proj.weight", {kvd, d}, 0, true);
    add_param(pre + "self_attn.v_proj.weight", {kvd, d}, 0, true);
    add_param(pre + "self_attn.o_proj.weight", {d, qd}, 0, true);
    add_param(pre + "mlp.gate_proj.weight", {F, d}, 0, true);
    add_param(pre + "mlp.up_proj.weight", {F, d}, 0, true);
    add_param(pre + "mlp.down_proj.weight", {d, F}, 0, true);
    add_param(pre + "input_layernorm.weight", {d}, 0, false);
    add_param(pre + "post_attention_layernorm.weight", {d}, 0, false);
  }
  add_param("model.norm.weight", {d}, 0, false);
  add_param("lm_head.weight", {c.vocab_size, d}, (size_t)Vp * d, true);
  const size_t total = params.back().offset + params.back().stored;
  p.assign(total, 0.0f);
  g.assign(total, 0.0f);
  m.assign(total, 0.0f);
  v.assign(total, 0.0f);
  init_params();
  // RoPE table: angle(t, i) = t · θ^(−2i/hd)
  const int half = hd / 2;
  rope.resize((size_t)c.max_seq * half * 2);
  for (int t = 0; t < c.max_seq; t++)
    for (int i = 0; i < half; i++) {
      const double inv_freq = std::pow((double)c.rope_theta, -2.0 * i / hd);
      rope[((size_t)t * half + i) * 2] = (float)std::cos(t * inv_freq);
      rope[((size_t)t * half + i) * 2 + 1] = (float)std::sin(t * inv_freq);
    }
}

void Model::add_param(const std::string& name, std::vector<int64_t> shape, size_t stored, bool decay) {
  ParamInfo info;
  info.name = name;
  info.size = 1;
  for (int64_t s : shape) info.size *= (size_t)s;
  info.shape = std::move(shape);
  info.stored = std::max(stored, info.size);
  info.offset = params.empty() ? 0 : params.back().offset + params.back().stored;
  info.decay = decay;
  by_name[name] = (int)params.size();
  params.push_back(std::move(info));
}

// Matrices ~ normal(0, init_std), with o_proj/down_proj (the residual outputs) at init_std/√(2L) as in
// Megatron's scaled init; norm weights = 1; padded vocabulary rows = 0. Each value depends only on
// (seed, tensor name, element index), so any sharding of the tensor reproduces it.
void Model::init_params() {
  const float scaled = cfg.init_std / std::sqrt(2.0f * cfg.n_layers);
  for (size_t i = 0; i < params.size(); i++) {
    const ParamInfo& info = params[i];
    float* w = p.data() + info.offset;
    if (info.shape.size() == 1) {
      std::fill_n(w, info.size, 1.0f);
      continue;
    }
    const bool residual_out = info.name.find("o_proj") != std::string::npos ||
                              info.name.find("down_proj") != std::string::npos;
    const float std_ = residual_out ? scaled : cfg.init_std;
    const uint64_t stream = fnv1a(info.name);
#pragma omp parallel for schedule(static)
    for (size_t e = 0; e < info.size; e++) w[e] = std_ * normal_at(cfg.seed, stream, e);
  }
}

const ParamInfo& Model::param(const std::string& name) const {
  auto it = by_name.find(name);
  if (it == by_name.end()) throw Error(MT_ERR_NOT_FOUND, "unknown parameter '" + name + "'");
  return params[it->second];
}

void Model::check_batch(const int32_t* tokens, const int32_t* targets, const float* mask, size_t n, int B,
                        int T) const {
  MT_CHECK(B > 0 && T > 0, "batch (%d) and seq (%d) must be positive", B, T);
  MT_CHECK(T <= cfg.max_seq, "seq %d exceeds the model's max_seq %d", T, cfg.max_seq);
  MT_CHECK(n == (size_t)B * T, "buffer holds %zu tokens but batch %d x seq %d = %zu", n, B, T, (size_t)B * T);
  MT_CHECK_PTR(tokens);
  for (size_t i = 0; i < n; i++)
    MT_CHECK(tokens[i] >= 0 && tokens[i] < cfg.vocab_size, "tokens[%zu] = %d is outside the vocabulary [0, %d)",
             i, tokens[i], cfg.vocab_size);
  if (targets)
    for (size_t i = 0; i < n; i++)
      MT_CHECK(targets[i] >= 0 && targets[i] < cfg.vocab_size,
               "targets[%zu] = %d is outside the vocabulary [0, %d)", i, targets[i], cfg.vocab_size);
  if (mask)
    for (size_t i = 0; i < n; i++)
      MT_CHECK(std::isfinite(mask[i]) && mask[i] >= 0, "loss_mask[%zu] = %g must be finite and >= 0", i, mask[i]);
}

void Model::ensure_activations(int B, int T) {
  Activations& a = acts;
  if (a.B == B && a.T == T) return;
  const size_t N = (size_t)B * T, d = cfg.dim, qd = (size_t)cfg.n_heads * hd, F = cfg.ffn_dim;
  const size_t qkvd = (size_t)(cfg.n_heads + 2 * cfg.n_kv_heads) * hd;
  a.B = B;
  a.T = T;
  a.layers.resize(cfg.n_layers);
  for (auto& L : a.layers) {
    L.x_in.resize(N * d), L.rstd1.resize(N), L.h1.resize(N * d);
    L.qkv.resize(N * qkvd), L.att.resize(N * qd);
    L.lse.resize((size_t)B * cfg.n_heads * T);
    L.x_mid.resize(N * d), L.rstd2.resize(N), L.h2.resize(N * d);
    L.gu.resize(N * 2 * F), L.s.resize(N * F);
  }
  a.x_fin.resize(N * d), a.rstd_f.resize(N), a.h_f.resize(N * d);
  a.dx.resize(N * d), a.dh.resize(N * d), a.dqkv.resize(N * qkvd), a.datt.resize(N * qd);
  a.dgu.resize(N * 2 * F), a.ds.resize(N * F);
}

void Model::forward(const int32_t* tokens, int B, int T) {
  ensure_activations(B, T);
  const int N = B * T, d = cfg.dim, H = cfg.n_heads, KVH = cfg.n_kv_heads, F = cfg.ffn_dim;
  const int qd = H * hd, kvd = KVH * hd, qkvd = qd + 2 * kvd;
  const size_t Nd = (size_t)N * d;
  embedding_forward(acts.layers[0].x_in.data(), tokens, P(0), N, d);
  for (int l = 0; l < cfg.n_layers; l++) {
    auto& L = acts.layers[l];
    auto W = [&](int slot) { return P(layer_param(l, slot)); };
    float *q = L.qkv.data(), *k = q + qd, *v = k + kvd;
    rmsnorm_forward(L.h1.data(), L.rstd1.data(), L.x_in.data(), W(LN1), N, d, cfg.norm_eps);
    matmul_forward(L.qkv.data(), L.h1.data(), W(Q), N, d, qkvd);  // [Wq; Wk; Wv]
    rope_forward(q, rope.data(), B, T, H, hd, qkvd);
    rope_forward(k, rope.data(), B, T, KVH, hd, qkvd);
    attention_forward(L.att.data(), L.lse.data(), q, k, v, B, T, H, KVH, hd, qkvd, qkvd, qd);
    std::copy_n(L.x_in.data(), Nd, L.x_mid.data());
    matmul_forward(acts.dh.data(), L.att.data(), W(O), N, qd, d);  // dh used as scratch for the projection
    residual_forward(L.x_mid.data(), acts.dh.data(), Nd);
    rmsnorm_forward(L.h2.data(), L.rstd2.data(), L.x_mid.data(), W(LN2), N, d, cfg.norm_eps);
    matmul_forward(L.gu.data(), L.h2.data(), W(GATE), N, d, 2 * F);  // [Wg; Wu]
    swiglu_forward(L.s.data(), L.gu.data(), N, F);
    float* x_out = l + 1 < cfg.n_layers ? acts.layers[l + 1].x_in.data() : acts.x_fin.data();
    std::copy_n(L.x_mid.data(), Nd, x_out);
    matmul_forward(acts.dh.data(), L.s.data(), W(DOWN), N, F, d);
    residual_forward(x_out, acts.dh.data(), Nd);
  }
  const int norm = 1 + cfg.n_layers * SLOTS;
  rmsnorm_forward(acts.h_f.data(), acts.rstd_f.data(), acts.x_fin.data(), P(norm), N, d, cfg.norm_eps);
}

double Model::loss_and_backward(const int32_t* tokens, const int32_t* targets, const float* mask, float denom,
                                bool backward) {
  const int B = acts.B, T = acts.T, N = B * T, d = cfg.dim, H = cfg.n_heads, KVH = cfg.n_kv_heads;
  const int F = cfg.ffn_dim, qd = H * hd, kvd = KVH * hd, qkvd = qd + 2 * kvd;
  const int norm = 1 + cfg.n_layers * SLOTS, head = norm + 1;
  Activations& a = acts;
  const double loss_sum = lm_head_cross_entropy(backward ? a.dh.data() : nullptr, G(head), a.h_f.data(), P(head),
                                                targets, mask, denom, N, d, cfg.vocab_size, Vp);
  if (!backward) return loss_sum;
  rmsnorm_backward(a.dx.data(), G(norm), a.dh.data(), a.x_fin.data(), P(norm), a.rstd_f.data(), N, d, false);
  for (int l = cfg.n_layers - 1; l >= 0; l--) {
    auto& L = a.layers[l];
    auto W = [&](int slot) { return P(layer_param(l, slot)); };
    auto dW = [&](int slot) { return G(layer_param(l, slot)); };
    // MLP: x_out = x_mid + s·Wdᵀ  (dx flows unchanged into x_mid's gradient)
    matmul_backward(a.ds.data(), dW(DOWN), a.dx.data(), L.s.data(), W(DOWN), N, F, d, false);
    swiglu_backward(a.dgu.data(), a.ds.data(), L.gu.data(), N, F);
    matmul_backward(a.dh.data(), dW(GATE), a.dgu.data(), L.h2.data(), W(GATE), N, d, 2 * F, false);
    rmsnorm_backward(a.dx.data(), dW(LN2), a.dh.data(), L.x_mid.data(), W(LN2), L.rstd2.data(), N, d, true);
    // Attention: x_mid = x_in + att·Woᵀ
    matmul_backward(a.datt.data(), dW(O), a.dx.data(), L.att.data(), W(O), N, qd, d, false);
    const float *q = L.qkv.data(), *k = q + qd, *v = k + kvd;
    float *dq = a.dqkv.data(), *dk = dq + qd, *dv = dk + kvd;
    attention_backward(dq, dk, dv, a.datt.data(), q, k, v, L.att.data(), L.lse.data(), B, T, H, KVH, hd, qkvd,
                       qkvd, qd);
    rope_backward(dq, rope.data(), B, T, H, hd, qkvd);
    rope_backward(dk, rope.data(), B, T, KVH, hd, qkvd);
    matmul_backward(a.dh.data(), dW(Q), a.dqkv.data(), L.h1.data(), W(Q), N, d, qkvd, false);
    rmsnorm_backward(a.dx.data(), dW(LN1), a.dh.data(), L.x_in.data(), W(LN1), L.rstd1.data(), N, d, true);
  }
  embedding_backward(G(0), a.dx.data(), tokens, N, d);
  return loss_sum;
}

void Model::optimizer_step(float* grad_norm, float* lr) {
  const size_t n = p.size();
  const double norm = std::sqrt(sum_squares(g.data(), n));
  *grad_norm = (float)norm;
  // Clip by global norm: coef = max_norm / (norm + 1e-6) when < 1, folded into the AdamW pass.
  const double coef = opt.grad_clip > 0 ? opt.grad_clip / (norm + 1e-6) : 1.0;
  const float grad_scale = coef < 1.0 ? (float)coef : 1.0f;
  step += 1;
  *lr = lr_at(opt, step);
  for (const ParamInfo& info : params) {
    const float wd = info.decay ? opt.weight_decay : 0.0f;
    adamw_update(p.data() + info.offset, g.data() + info.offset, grad_scale, m.data() + info.offset,
                 v.data() + info.offset, info.stored, step, *lr, opt.beta1, opt.beta2, opt.eps, wd);
  }
}

}  // namespace mt
