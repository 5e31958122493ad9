// model.cpp — Llama-2 forward/backward of one pipeline stage on one tensor-parallel rank, the 1F1B schedule,
// data-parallel gradient synchronisation and the AdamW step (see kernels.hpp for each layer's math).
//
//   x   = wte[tokens]                                              [N, d]
//   for each layer:
//     h1  = rmsnorm(x, input_layernorm)
//     q, k, v = h1·Wqᵀ, h1·Wkᵀ, h1·Wvᵀ ;  q, k = rope(q), rope(k)
//     x   = x + attention(q, k, v)·Woᵀ
//     h2  = rmsnorm(x, post_attention_layernorm)
//     x   = x + (silu(h2·Wgᵀ) ∘ h2·Wuᵀ)·Wdᵀ
//   h_f = rmsnorm(x, norm);  loss = masked mean CE(h_f·W_headᵀ, targets)
//
// q/k/v and gate/up are each computed by ONE GEMM: their weights are adjacent in the flat parameter buffer
// (HF order q, k, v and gate, up), so [Wq; Wk; Wv] and [Wg; Wu] are contiguous matrices as they stand.
//
// Tensor parallelism (Megatron): q/k/v/gate/up are column-parallel (each rank holds whole heads and an ffn
// slice), o/down row-parallel, embedding and head vocab-parallel, norms replicated. Communication happens
// only in the two operators below, placed where activations enter and leave the parallel regions.
// Pipeline parallelism: contiguous layer ranges per stage, activations and their gradients point-to-point.
#include "model.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "kernels.hpp"
#include "optim.hpp"

namespace mt {

namespace {
// Index of each tensor of a local layer, counted from Model::layer_idx0 (HF state-dict order).
enum LayerSlot { Q = 0, K, VV, O, GATE, UP, DOWN, LN1, LN2, SLOTS };

// Megatron's g: all-reduce forward (leaving a row-parallel region: partial sums over the TP ranks), identity
// backward. Also sums the vocab-parallel embedding's partial lookups.
void g_forward(Comm& tp, float* x, size_t n) { tp.all_reduce_sum(x, n); }
// Megatron's f: identity forward (entering a column-parallel region: every rank reads the same input),
// all-reduce of the input gradient backward.
void f_backward(Comm& tp, float* dx, size_t n) { tp.all_reduce_sum(dx, n); }

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

int pipeline_slots(int M, int P, int s) { return std::max(1, std::min(P - s, M)); }

Model::Model(const mt_model_config& c, const mt_optim_config& o, const mt_topology* t) : cfg(c), opt(o) {
  check_config(c);
  optim_config_check(o);
  setup_topology(t);
  const int tp = topo.tp, tr = topo.tp_rank;
  hd = c.dim / c.n_heads;
  Vp = (c.vocab_size + 128 * tp - 1) / (128 * tp) * (128 * tp);
  Hl = c.n_heads / tp, KVHl = c.n_kv_heads / tp, Fl = c.ffn_dim / tp, Vl = Vp / tp, v0 = tr * Vl;
  n_layers = c.n_layers / topo.pp, layer0 = topo.pp_rank * n_layers;
  first = topo.pp_rank == 0, last = topo.pp_rank == topo.pp - 1;
  const int64_t d = c.dim, qd = (int64_t)c.n_heads * hd, kvd = (int64_t)c.n_kv_heads * hd, F = c.ffn_dim;
  const int64_t vocab_rows = std::max(0, std::min(Vl, c.vocab_size - v0));  // padding rows stay hidden
  if (first) {
    embed_idx = (int)params.size();
    add_param("model.embed_tokens.weight", {c.vocab_size, d}, 0, v0, vocab_rows, (size_t)Vl * d, true);
  }
  layer_idx0 = (int)params.size();
  for (int l = layer0; l < layer0 + n_layers; l++) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    add_param(pre + "self_attn.q_proj.weight", {qd, d}, 0, (int64_t)tr * Hl * hd, (int64_t)Hl * hd, 0, true);
    add_param(pre + "self_attn.k_proj.weight", {kvd, d}, 0, (int64_t)tr * KVHl * hd, (int64_t)KVHl * hd, 0, true);
    add_param(pre + "self_attn.v_proj.weight", {kvd, d}, 0, (int64_t)tr * KVHl * hd, (int64_t)KVHl * hd, 0, true);
    add_param(pre + "self_attn.o_proj.weight", {d, qd}, 1, (int64_t)tr * Hl * hd, (int64_t)Hl * hd, 0, true);
    add_param(pre + "mlp.gate_proj.weight", {F, d}, 0, (int64_t)tr * Fl, Fl, 0, true);
    add_param(pre + "mlp.up_proj.weight", {F, d}, 0, (int64_t)tr * Fl, Fl, 0, true);
    add_param(pre + "mlp.down_proj.weight", {d, F}, 1, (int64_t)tr * Fl, Fl, 0, true);
    add_param(pre + "input_layernorm.weight", {d}, -1, 0, d, 0, false);
    add_param(pre + "post_attention_layernorm.weight", {d}, -1, 0, d, 0, false);
  }
  if (last) {
    norm_idx = (int)params.size();
    add_param("model.norm.weight", {d}, -1, 0, d, 0, false);
    head_idx = (int)params.size();
    add_param("lm_head.weight", {c.vocab_size, d}, 0, v0, vocab_rows, (size_t)Vl * d, true);
  }
  flat = params.empty() ? 0 : params.back().offset + params.back().stored;
  const bool zero = topo.zero1 && topo.dp > 1;
  chunk = zero ? (flat + topo.dp - 1) / topo.dp : flat;
  chunk0 = zero ? chunk * topo.dp_rank : 0;
  p.assign(zero ? chunk * topo.dp : flat, 0.0f);  // ZeRO-1 pads to dp equal chunks
  if (topo.device == MT_DEVICE_CPU) {  // a device backend keeps these on the device
    g.assign(p.size(), 0.0f);
    m.assign(chunk, 0.0f);
    v.assign(chunk, 0.0f);
  }
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
  if (topo.device == MT_DEVICE_CUDA) {
    dev = make_cuda_backend(*this);  // uploads p and the RoPE table
    std::vector<float>().swap(p);
  }
}

void Model::setup_topology(const mt_topology* t) {
  if (t) {
    MT_CHECK(t->struct_size == (int32_t)sizeof(mt_topology), "mt_topology.struct_size is %d, expected %d",
             t->struct_size, (int)sizeof(mt_topology));
    topo.tp = t->tp, topo.pp = t->pp, topo.dp = t->dp, topo.zero1 = t->zero1 != 0;
    topo.device = t->device, topo.recompute = t->recompute != 0;
    MT_CHECK(t->device == MT_DEVICE_CPU || t->device == MT_DEVICE_CUDA, "device %d is not 0 (cpu) or 1 (cuda)",
             t->device);
    MT_CHECK(t->recompute == 0 || t->recompute == 1, "recompute %d is not 0 (none) or 1 (selective)", t->recompute);
    if (topo.device == MT_DEVICE_CUDA) cuda_check_available();
  }
  const Topology& T = topo;
  MT_CHECK(T.tp >= 1 && T.pp >= 1 && T.dp >= 1, "tp (%d), pp (%d) and dp (%d) must be >= 1", T.tp, T.pp, T.dp);
  MT_CHECK(cfg.n_heads % T.tp == 0, "n_heads %d is not divisible by tp %d", cfg.n_heads, T.tp);
  MT_CHECK(cfg.n_kv_heads % T.tp == 0, "n_kv_heads %d is not divisible by tp %d (each rank needs whole kv heads)",
           cfg.n_kv_heads, T.tp);
  MT_CHECK(cfg.ffn_dim % T.tp == 0, "ffn_dim %d is not divisible by tp %d", cfg.ffn_dim, T.tp);
  MT_CHECK(cfg.n_layers % T.pp == 0, "n_layers %d is not divisible by pp %d", cfg.n_layers, T.pp);
  const int n = T.tp * T.pp * T.dp;
  if (n > 1) dist_init();
  MT_CHECK(world_size() == n, "topology tp %d x pp %d x dp %d needs %d ranks, but this job has %d", T.tp, T.pp,
           T.dp, n, world_size());
  const int r = world_rank();
  topo.tp_rank = r % T.tp, topo.dp_rank = (r / T.tp) % T.dp, topo.pp_rank = r / (T.tp * T.dp);
  if (n == 1) {
    tp_comm = make_self_comm(), dp_comm = make_self_comm(), pp_comm = make_self_comm();
    mp_comm = make_self_comm(), world = make_self_comm();
    return;
  }
  // Collective over the world: every rank splits in the same order.
  tp_comm = split_world(topo.pp_rank * T.dp + topo.dp_rank, topo.tp_rank);
  dp_comm = split_world(topo.pp_rank * T.tp + topo.tp_rank, topo.dp_rank);
  pp_comm = split_world(topo.dp_rank * T.tp + topo.tp_rank, topo.pp_rank);
  mp_comm = split_world(topo.dp_rank, topo.pp_rank * T.tp + topo.tp_rank);
  world = world_comm();
}

void Model::add_param(const std::string& name, std::vector<int64_t> full, int split_dim, int64_t start,
                      int64_t len, size_t stored, bool decay) {
  ParamInfo info;
  info.name = name;
  info.full_shape = full;
  info.shape = full;
  info.split_dim = split_dim;
  info.slice_start = split_dim >= 0 ? start : 0;
  if (split_dim >= 0) info.shape[split_dim] = len;
  info.size = 1;
  for (int64_t s : info.shape) info.size *= (size_t)s;
  info.stored = std::max(stored, info.size);
  info.offset = params.empty() ? 0 : params.back().offset + params.back().stored;
  info.decay = decay;
  by_name[name] = (int)params.size();
  params.push_back(std::move(info));
}

// Matrices ~ normal(0, init_std), with o_proj/down_proj (the residual outputs) at init_std/√(2L) as in
// Megatron's scaled init; norm weights = 1; padded vocabulary rows = 0. Each value depends only on
// (seed, tensor name, index in the FULL tensor), so every sharding reproduces the 1-rank model.
void Model::init_params() {
  const float scaled = cfg.init_std / std::sqrt(2.0f * cfg.n_layers);
  for (const ParamInfo& info : params) {
    float* w = p.data() + info.offset;
    if (info.shape.size() == 1) {
      std::fill_n(w, info.size, 1.0f);
      continue;
    }
    const bool residual_out = info.name.find("o_proj") != std::string::npos ||
                              info.name.find("down_proj") != std::string::npos;
    const float std_ = residual_out ? scaled : cfg.init_std;
    const uint64_t stream = fnv1a(info.name);
    const size_t cols = (size_t)info.shape[1], full_cols = (size_t)info.full_shape[1];
    const size_t start = (size_t)info.slice_start;
#pragma omp parallel for schedule(static)
    for (size_t e = 0; e < info.size; e++) {
      const size_t r = e / cols, c = e % cols;
      const size_t global = info.split_dim == 1 ? r * full_cols + start + c : (start * cols) + e;
      w[e] = std_ * normal_at(cfg.seed, stream, global);
    }
  }
}

const ParamInfo& Model::param(const std::string& name) const {
  auto it = by_name.find(name);
  if (it == by_name.end()) throw Error(MT_ERR_NOT_FOUND, "unknown parameter '" + name + "' on this rank");
  return params[it->second];
}

void Model::check_batch(const int32_t* tokens, const int32_t* targets, const float* mask, size_t n, int B,
                        int T, const int32_t* seg) const {
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
  if (seg) check_segment_ids(seg, n, T);
}

void check_segment_ids(const int32_t* seg, size_t n, int T) {
  for (size_t i = 0; i < n; i++)
    MT_CHECK(i % T == 0 || seg[i] >= seg[i - 1],
             "segment_ids[%zu] = %d is below segment_ids[%zu] = %d (row %zu): ids must not decrease along a row", i,
             seg[i], i - 1, seg[i - 1], i / T);
}

Activations& Model::slot(int i, int B, int T) {
  if ((int)slots.size() <= i) slots.resize(i + 1);
  Activations& a = slots[i];
  ensure_scratch(B, T);
  if (a.B == B && a.T == T) return a;
  const size_t N = (size_t)B * T, d = cfg.dim, qd = (size_t)Hl * hd, F = Fl;
  const size_t qkvd = (size_t)(Hl + 2 * KVHl) * hd;
  a.B = B;
  a.T = T;
  a.layers.resize(n_layers);
  for (auto& L : a.layers) {
    L.x_in.resize(N * d), L.rstd1.resize(N), L.h1.resize(N * d);
    L.qkv.resize(N * qkvd), L.att.resize(N * qd);
    L.lse.resize((size_t)B * Hl * T);
    L.x_mid.resize(N * d), L.rstd2.resize(N), L.h2.resize(N * d);
    L.gu.resize(N * 2 * F), L.s.resize(N * F);
  }
  a.x_fin.resize(N * d), a.rstd_f.resize(N), a.h_f.resize(N * d);
  if (!first) a.dx_send.resize(N * d);
  return a;
}

void Model::ensure_scratch(int B, int T) {
  const size_t N = (size_t)B * T, d = cfg.dim, qd = (size_t)Hl * hd, F = Fl;
  const size_t qkvd = (size_t)(Hl + 2 * KVHl) * hd;
  if (dx.size() == N * d) return;
  dx.resize(N * d), dh.resize(N * d), dqkv.resize(N * qkvd), datt.resize(N * qd);
  dgu.resize(N * 2 * F), ds.resize(N * F);
}

void Model::stage_forward(Activations& a, const int32_t* tokens, int tag, const int32_t* seg) {
  const int B = a.B, T = a.T, N = B * T, d = cfg.dim, F = Fl;
  const int qd = Hl * hd, kvd = KVHl * hd, qkvd = qd + 2 * kvd;
  const size_t Nd = (size_t)N * d;
  a.seg = seg;  // kept with the activations for this micro-batch's backward
  if (seg) a.pos.resize(N), segment_positions(a.pos.data(), seg, B, T);
  const int32_t* pos = seg ? a.pos.data() : nullptr;
  // This slot's previous send still reads x_fin until it completes (MPI: a send buffer is untouched meanwhile).
  if (a.fwd_send) a.fwd_send->wait();
  float* x0 = a.layers[0].x_in.data();
  if (first) {
    embedding_forward(x0, tokens, P(embed_idx), N, d, v0, Vl);
    g_forward(*tp_comm, x0, Nd);
  } else {
    pp_comm->recv(x0, Nd, topo.pp_rank - 1, tag);
  }
  for (int l = 0; l < n_layers; l++) {
    auto& L = a.layers[l];
    auto W = [&](int slot) { return P(layer_idx0 + l * SLOTS + slot); };
    float *q = L.qkv.data(), *k = q + qd, *v = k + kvd;
    rmsnorm_forward(L.h1.data(), L.rstd1.data(), L.x_in.data(), W(LN1), N, d, cfg.norm_eps);
    matmul_forward(L.qkv.data(), L.h1.data(), W(Q), N, d, qkvd);  // [Wq; Wk; Wv], f: identity
    rope_forward(q, rope.data(), B, T, Hl, hd, qkvd, pos);
    rope_forward(k, rope.data(), B, T, KVHl, hd, qkvd, pos);
    attention_forward(L.att.data(), L.lse.data(), q, k, v, B, T, Hl, KVHl, hd, qkvd, qkvd, qd, seg);
    std::copy_n(L.x_in.data(), Nd, L.x_mid.data());
    matmul_forward(dh.data(), L.att.data(), W(O), N, qd, d);  // dh used as scratch for the projection
    g_forward(*tp_comm, dh.data(), Nd);
    residual_forward(L.x_mid.data(), dh.data(), Nd);
    rmsnorm_forward(L.h2.data(), L.rstd2.data(), L.x_mid.data(), W(LN2), N, d, cfg.norm_eps);
    matmul_forward(L.gu.data(), L.h2.data(), W(GATE), N, d, 2 * F);  // [Wg; Wu], f: identity
    swiglu_forward(L.s.data(), L.gu.data(), N, F);
    float* x_out = l + 1 < n_layers ? a.layers[l + 1].x_in.data() : a.x_fin.data();
    std::copy_n(L.x_mid.data(), Nd, x_out);
    matmul_forward(dh.data(), L.s.data(), W(DOWN), N, F, d);
    g_forward(*tp_comm, dh.data(), Nd);
    residual_forward(x_out, dh.data(), Nd);
  }
  if (last) {
    rmsnorm_forward(a.h_f.data(), a.rstd_f.data(), a.x_fin.data(), P(norm_idx), N, d, cfg.norm_eps);
  } else {
    a.fwd_send = pp_comm->isend(a.x_fin.data(), Nd, topo.pp_rank + 1, tag);
  }
}

double Model::stage_loss_backward(Activations& a, const int32_t* tokens, const int32_t* targets, const float* mask,
                                  float denom, bool backward, int tag) {
  const int B = a.B, T = a.T, N = B * T, d = cfg.dim, F = Fl;
  const int qd = Hl * hd, kvd = KVHl * hd, qkvd = qd + 2 * kvd;
  const size_t Nd = (size_t)N * d;
  double loss_sum = 0;
  if (last) {
    loss_sum = lm_head_cross_entropy(*tp_comm, backward ? dh.data() : nullptr, G(head_idx), a.h_f.data(),
                                     P(head_idx), targets, mask, denom, N, d, cfg.vocab_size, v0, Vl);
    if (!backward) return loss_sum;
    f_backward(*tp_comm, dh.data(), Nd);  // the head is vocab (column) parallel
    rmsnorm_backward(dx.data(), G(norm_idx), dh.data(), a.x_fin.data(), P(norm_idx), a.rstd_f.data(), N, d,
                     false);
  } else {
    if (!backward) return 0;
    pp_comm->recv(dx.data(), Nd, topo.pp_rank + 1, tag);
  }
  for (int l = n_layers - 1; l >= 0; l--) {
    auto& L = a.layers[l];
    auto W = [&](int slot) { return P(layer_idx0 + l * SLOTS + slot); };
    auto dW = [&](int slot) { return G(layer_idx0 + l * SLOTS + slot); };
    // MLP: x_out = x_mid + s·Wdᵀ  (dx flows unchanged into x_mid's gradient; g backward is the identity)
    matmul_backward(ds.data(), dW(DOWN), dx.data(), L.s.data(), W(DOWN), N, F, d, false);
    swiglu_backward(dgu.data(), ds.data(), L.gu.data(), N, F);
    matmul_backward(dh.data(), dW(GATE), dgu.data(), L.h2.data(), W(GATE), N, d, 2 * F, false);
    f_backward(*tp_comm, dh.data(), Nd);
    rmsnorm_backward(dx.data(), dW(LN2), dh.data(), L.x_mid.data(), W(LN2), L.rstd2.data(), N, d, true);
    // Attention: x_mid = x_in + att·Woᵀ
    matmul_backward(datt.data(), dW(O), dx.data(), L.att.data(), W(O), N, qd, d, false);
    const float *q = L.qkv.data(), *k = q + qd, *v = k + kvd;
    float *dq = dqkv.data(), *dk = dq + qd, *dv = dk + kvd;
    const int32_t* pos = a.seg ? a.pos.data() : nullptr;
    attention_backward(dq, dk, dv, datt.data(), q, k, v, L.att.data(), L.lse.data(), B, T, Hl, KVHl, hd, qkvd,
                       qkvd, qd, a.seg);
    rope_backward(dq, rope.data(), B, T, Hl, hd, qkvd, pos);
    rope_backward(dk, rope.data(), B, T, KVHl, hd, qkvd, pos);
    matmul_backward(dh.data(), dW(Q), dqkv.data(), L.h1.data(), W(Q), N, d, qkvd, false);
    f_backward(*tp_comm, dh.data(), Nd);
    rmsnorm_backward(dx.data(), dW(LN1), dh.data(), L.x_in.data(), W(LN1), L.rstd1.data(), N, d, true);
  }
  if (first) {
    embedding_backward(G(embed_idx), dx.data(), tokens, N, d, v0, Vl);
  } else {
    if (a.bwd_send) a.bwd_send->wait();
    std::copy_n(dx.data(), Nd, a.dx_send.data());
    a.bwd_send = pp_comm->isend(a.dx_send.data(), Nd, topo.pp_rank - 1, tag);
  }
  return loss_sum;
}

double Model::forward_backward(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T,
                               float denom, const int32_t* seg) {
  if (dev) return dev->forward_backward(tokens, targets, mask, B, T, denom, seg);
  MT_CHECK(topo.pp == 1, "forward_backward runs one stage; with pp %d use train_step", topo.pp);
  Activations& a = slot(0, B, T);
  stage_forward(a, tokens, 0, seg);
  return stage_loss_backward(a, tokens, targets, mask, denom, true, 1);
}

void Model::forward_hidden(const int32_t* tokens, int B, int T, const int32_t* seg) {
  MT_CHECK(topo.pp == 1 && topo.tp == 1, "logits need the whole model on one rank (tp %d, pp %d)", topo.tp,
           topo.pp);
  stage_forward(slot(0, B, T), tokens, 0, seg);
}

void Model::eval_loss(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T,
                      double* loss_sum, double* count, const int32_t* seg) {
  if (dev) return dev->eval_loss(tokens, targets, mask, B, T, loss_sum, count, seg);
  Activations& a = slot(0, B, T);
  stage_forward(a, tokens, 0, seg);
  const double local = stage_loss_backward(a, tokens, targets, mask, 1.0f, false, 1);
  if (a.fwd_send) a.fwd_send->wait();
  finish_eval(local, mask, (size_t)B * T, loss_sum, count);
}

void Model::finish_eval(double local, const float* mask, size_t n, double* loss_sum, double* count) {
  double sums[2] = {last && topo.tp_rank == 0 ? local : 0.0, 0.0};
  world->all_reduce_sum(sums, 1);  // Σ over DP slices of the last stage's loss
  for (size_t i = 0; i < n; i++) sums[1] += mask[i];
  dp_comm->all_reduce_sum(sums + 1, 1);
  *loss_sum = sums[0];
  *count = sums[1];
}

void Model::train_step(const int32_t* tokens, const int32_t* targets, const float* mask, int n_micro, int B, int T,
                       mt_step_result* out, const int32_t* seg) {
  if (dev) return dev->train_step(tokens, targets, mask, n_micro, B, T, out, seg);
  const size_t per = (size_t)B * T;
  const double count = batch_token_count(mask, per * n_micro);
  std::fill(g.begin(), g.end(), 0.0f);
  double loss_sum = 0;
  run_1f1b(
      n_micro, topo.pp, topo.pp_rank,
      [&](int i, int k) { stage_forward(slot(k, B, T), tokens + i * per, fwd_tag(i), seg ? seg + i * per : nullptr); },
      [&](int i, int k) {
        loss_sum += stage_loss_backward(slots[k], tokens + i * per, targets + i * per, mask + i * per, (float)count,
                                        true, bwd_tag(i));
      });
  for (auto& a : slots) {
    if (a.fwd_send) a.fwd_send->wait();
    if (a.bwd_send) a.bwd_send->wait();
  }
  finish_step(loss_sum, count, out);
}

double Model::batch_token_count(const float* mask, size_t n) {
  double count = 0;
  for (size_t i = 0; i < n; i++) count += mask[i];
  dp_comm->all_reduce_sum(&count, 1);  // the loss is the global batch's token-level mean
  MT_CHECK(count > 0, "the loss mask of the whole batch is zero: nothing to train on");
  return count;
}

void Model::finish_step(double loss_sum, double count, mt_step_result* out) {
  double total = last && topo.tp_rank == 0 ? loss_sum : 0.0;
  world->all_reduce_sum(&total, 1);
  out->loss = (float)(total / count);
  out->n_tokens = (float)count;
  out->skipped = optimizer_step(&out->grad_norm, &out->lr) ? 0.0f : 1.0f;
}

// Σ g² over [begin, end) of the flat buffer, each distinct parameter once: tensors replicated over TP count
// on TP rank 0 only. `grads` holds the values of [begin, end).
double Model::global_norm_squared(const float* grads, size_t begin, size_t end) {
  double sq = 0;
  for (const ParamInfo& info : params) {
    if (info.split_dim < 0 && topo.tp_rank != 0) continue;
    const size_t b = std::max(begin, info.offset), e = std::min(end, info.offset + info.stored);
    if (b < e) sq += sum_squares(grads + (b - begin), e - b);
  }
  return sq;
}

bool Model::optimizer_step(float* grad_norm, float* lr) {
  if (dev) return dev->optimizer_step(grad_norm, lr);
  const bool zero = topo.zero1 && topo.dp > 1;
  // Data parallel: sum the gradients (the loss was already divided by the global token count). ZeRO-1 keeps
  // only this rank's chunk of the sum.
  std::vector<float> own;
  const float* grads = g.data();
  if (zero) {
    own.resize(chunk);
    dp_comm->reduce_scatter_sum(g.data(), own.data(), chunk);
    grads = own.data();
  } else {
    dp_comm->all_reduce_sum(g.data(), flat);
  }
  double sq = global_norm_squared(grads, chunk0, chunk0 + chunk);
  (zero ? world : mp_comm)->all_reduce_sum(&sq, 1);
  const double norm = std::sqrt(sq);
  *grad_norm = (float)norm;
  if (!std::isfinite(norm)) {  // the same on every rank: sq was all-reduced
    *lr = lr_at(opt, step + 1);
    return false;
  }
  // Clip by global norm: coef = max_norm / (norm + 1e-6) when < 1, folded into the AdamW pass.
  const double coef = opt.grad_clip > 0 ? opt.grad_clip / (norm + 1e-6) : 1.0;
  const float grad_scale = coef < 1.0 ? (float)coef : 1.0f;
  step += 1;
  *lr = lr_at(opt, step);
  for (const ParamInfo& info : params) {
    const size_t b = std::max(chunk0, info.offset), e = std::min(chunk0 + chunk, info.offset + info.stored);
    if (b >= e) continue;
    const float wd = info.decay ? opt.weight_decay : 0.0f;
    adamw_update(p.data() + b, grads + (b - chunk0), grad_scale, m.data() + (b - chunk0), v.data() + (b - chunk0),
                 e - b, step, *lr, opt.beta1, opt.beta2, opt.eps, wd);
  }
  if (zero) dp_comm->all_gather(p.data() + chunk0, p.data(), chunk);
  return true;
}

void Model::decode(KvCache& kv, const int32_t* seq, const int32_t* tokens, const uint8_t* want, int rows,
                   float* logits) {
  if (dev) return dev->decode(kv, seq, tokens, want, rows, logits);
  MT_CHECK(topo.tp == 1 && topo.pp == 1, "decoding needs the whole model on one rank (tp %d, pp %d)", topo.tp,
           topo.pp);
  const int d = cfg.dim, F = Fl, qd = Hl * hd, kvd = KVHl * hd, qkvd = qd + 2 * kvd;
  const size_t Nd = (size_t)rows * d;
  // Positions: each row takes the next position of its sequence.
  std::vector<int32_t> pos(rows);
  std::vector<int> next(kv.len);
  for (int r = 0; r < rows; r++) {
    MT_CHECK(seq[r] >= 0 && seq[r] < kv.max_seqs, "row %d: sequence %d is outside [0, %d)", r, seq[r], kv.max_seqs);
    MT_CHECK(next[seq[r]] < kv.max_len, "row %d: sequence %d is full (%d tokens)", r, seq[r], kv.max_len);
    MT_CHECK(next[seq[r]] < cfg.max_seq, "row %d: position %d exceeds the model's max_seq %d", r, next[seq[r]],
             cfg.max_seq);
    pos[r] = next[seq[r]]++;
  }
  std::vector<float> x(Nd), h(Nd), tmp(Nd), qkv((size_t)rows * qkvd), att((size_t)rows * qd),
      gu((size_t)rows * 2 * F), sw((size_t)rows * F), rstd(rows);
  embedding_forward(x.data(), tokens, P(embed_idx), rows, d, v0, Vl);
  const size_t kvs = (size_t)KVHl * hd;
  for (int l = 0; l < n_layers; l++) {
    auto W = [&](int slot) { return P(layer_idx0 + l * SLOTS + slot); };
    rmsnorm_forward(h.data(), rstd.data(), x.data(), W(LN1), rows, d, cfg.norm_eps);
    matmul_forward(qkv.data(), h.data(), W(Q), rows, d, qkvd);
    rope_forward_at(qkv.data(), rope.data(), pos.data(), rows, Hl, hd, qkvd);
    rope_forward_at(qkv.data() + qd, rope.data(), pos.data(), rows, KVHl, hd, qkvd);
    for (int r = 0; r < rows; r++) {  // store this row's k, v at its position
      const size_t at = ((size_t)seq[r] * kv.max_len + pos[r]) * kvs;
      std::copy_n(qkv.data() + (size_t)r * qkvd + qd, kvd, kv.k[l].data() + at);
      std::copy_n(qkv.data() + (size_t)r * qkvd + qd + kvd, kvd, kv.v[l].data() + at);
    }
    attention_cached(att.data(), qkv.data(), qkvd, kv.k[l].data(), kv.v[l].data(), seq, pos.data(), rows, Hl, KVHl,
                     hd, kv.max_len);
    matmul_forward(tmp.data(), att.data(), W(O), rows, qd, d);
    residual_forward(x.data(), tmp.data(), Nd);
    rmsnorm_forward(h.data(), rstd.data(), x.data(), W(LN2), rows, d, cfg.norm_eps);
    matmul_forward(gu.data(), h.data(), W(GATE), rows, d, 2 * F);
    swiglu_forward(sw.data(), gu.data(), rows, F);
    matmul_forward(tmp.data(), sw.data(), W(DOWN), rows, F, d);
    residual_forward(x.data(), tmp.data(), Nd);
  }
  for (int r = 0; r < rows; r++) kv.len[seq[r]] = std::max(kv.len[seq[r]], pos[r] + 1);
  // Final norm and head for the rows whose logits are wanted, gathered contiguously.
  int n_out = 0;
  for (int r = 0; r < rows; r++) {
    if (want && !want[r]) continue;
    std::copy_n(x.data() + (size_t)r * d, d, tmp.data() + (size_t)n_out * d);
    n_out++;
  }
  if (n_out == 0) return;
  rmsnorm_forward(h.data(), rstd.data(), tmp.data(), P(norm_idx), n_out, d, cfg.norm_eps);
  lm_head_logits(logits, h.data(), P(head_idx), n_out, d, cfg.vocab_size, Vl);
}

}  // namespace mt
