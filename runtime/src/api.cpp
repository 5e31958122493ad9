// api.cpp — the C ABI of meditron.h: argument and handle checks, exceptions → status + thread-local message.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

#include "comm.hpp"
#include "common.hpp"
#include "kernels.hpp"
#include "model.hpp"
#include "optim.hpp"

extern "C" void openblas_set_num_threads(int);

#ifndef MT_BUILD_FLAGS
#define MT_BUILD_FLAGS "unknown"
#endif

struct mt_model : mt::Model {
  using Model::Model;
  std::string error;  // last failure of a call on this handle (see mt_model_error)
};

struct mt_kv : mt::KvCache {};

namespace {
thread_local std::string t_error;
std::atomic<int> g_threads{0};  // 0: OpenMP's default

// Live handles, so a freed or foreign pointer is reported instead of dereferenced.
std::mutex g_handles_mu;
std::unordered_set<const void*> g_handles;

// Runs `fn`, mapping exceptions to a status code and the thread-local message. Applies the thread count on
// every entry: nonblocking FFI calls arrive on pool threads whose OpenMP settings are their own.
template <class Fn>
int guard(Fn&& fn) {
  try {
    t_error.clear();
    if (g_threads > 0) omp_set_num_threads(g_threads);
    fn();
    return MT_OK;
  } catch (const mt::Error& e) {
    t_error = e.what();
    return e.code;
  } catch (const std::bad_alloc&) {
    t_error = "out of memory";
    return MT_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    t_error = std::string("internal error: ") + e.what();
    return MT_ERR_INTERNAL;
  } catch (...) {
    t_error = "internal error: unknown exception";
    return MT_ERR_INTERNAL;
  }
}

// guard() that also records the failure on the handle, for callers on another thread.
template <class Fn>
int guard_model(mt_model* m, Fn&& fn) {
  const int rc = guard(fn);
  if (rc != MT_OK && m != nullptr) {
    std::lock_guard<std::mutex> lock(g_handles_mu);
    if (g_handles.count(m)) m->error = t_error;
  }
  return rc;
}

mt::Model& model_ref(mt_model* m) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  if (m == nullptr) throw mt::Error(MT_ERR_INVALID_HANDLE, "model handle is null");
  if (!g_handles.count(m)) throw mt::Error(MT_ERR_INVALID_HANDLE, "model handle is not live (freed or foreign)");
  return *m;
}

const mt_optim_config& optim_ref(const mt_optim_config* o) {
  MT_CHECK(o != nullptr, "optimizer config must not be null");
  mt::optim_config_check(*o);
  return *o;
}

float* buffer_of(mt::Model& m, const mt::ParamInfo& info, int32_t kind) {
  switch (kind) {
    case MT_TENSOR_PARAM: return m.p.data() + info.offset;
    case MT_TENSOR_GRAD: return m.g.data() + info.offset;
    case MT_TENSOR_ADAM_M:
    case MT_TENSOR_ADAM_V:
      MT_CHECK(m.chunk == m.flat && m.chunk0 == 0,
               "the optimizer state is sharded over DP (ZeRO-1): use mt_model_optim_chunk_read/write");
      return (kind == MT_TENSOR_ADAM_M ? m.m.data() : m.v.data()) + info.offset;
  }
  throw mt::Error(MT_ERR_INVALID_ARGUMENT, mt::format("tensor kind %d is not one of 0..3", kind));
}

const mt::ParamInfo& tensor_args(mt::Model& m, const char* name, size_t n) {
  MT_CHECK(name != nullptr, "tensor name must not be null");
  const mt::ParamInfo& info = m.param(name);
  MT_CHECK(n == info.size, "tensor '%s' has %zu elements, buffer has %zu", name, info.size, n);
  return info;
}

// Offset of tensor `info` in the flat buffer of `kind` (a device model's read/write address).
size_t device_offset(mt::Model& m, const mt::ParamInfo& info, int32_t kind) {
  MT_CHECK(kind >= MT_TENSOR_PARAM && kind <= MT_TENSOR_ADAM_V, "tensor kind %d is not one of 0..3", kind);
  MT_CHECK(kind < MT_TENSOR_ADAM_M || (m.chunk == m.flat && m.chunk0 == 0),
           "the optimizer state is sharded over DP (ZeRO-1): use mt_model_optim_chunk_read/write");
  return info.offset;
}

float* optim_chunk(mt::Model& m, int32_t kind, size_t n) {
  MT_CHECK(kind == MT_TENSOR_ADAM_M || kind == MT_TENSOR_ADAM_V, "optimizer chunk kind %d is not 2 (m) or 3 (v)",
           kind);
  MT_CHECK(n == m.chunk, "optimizer chunk has %zu floats, buffer has %zu", m.chunk, n);
  if (m.dev) return nullptr;  // on the device: read/write through the backend
  return kind == MT_TENSOR_ADAM_M ? m.m.data() : m.v.data();
}
}  // namespace

extern "C" {

const char* mt_last_error(void) { return t_error.c_str(); }

int mt_dist_init(int32_t* out_rank, int32_t* out_size) {
  return guard([&] {
    MT_CHECK(out_rank != nullptr && out_size != nullptr, "out_rank and out_size must not be null");
    mt::dist_init();
    *out_rank = mt::world_rank();
    *out_size = mt::world_size();
  });
}

int32_t mt_dist_have_mpi(void) { return mt::have_mpi() ? 1 : 0; }

int mt_dist_barrier(void) {
  return guard([&] { mt::world_comm()->barrier(); });
}

int mt_dist_all_ok(int32_t ok, int32_t* all_ok) {
  return guard([&] {
    MT_CHECK_PTR(all_ok);
    float failed = ok != 0 ? 0.0f : 1.0f;  // max over ranks: 1 when any rank failed
    mt::world_comm()->all_reduce_max(&failed, 1);
    *all_ok = failed == 0.0f ? 1 : 0;
  });
}

int mt_dist_finalize(void) {
  return guard([&] { mt::dist_finalize(); });
}

void mt_dist_abort(int32_t code) { mt::dist_abort(code); }

const char* mt_model_error(mt_model* model) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  if (model == nullptr || !g_handles.count(model)) return "model handle is not live (freed or foreign)";
  return model->error.c_str();
}
int32_t mt_abi_version(void) { return MT_ABI_VERSION; }

const char* mt_build_info(void) {
#ifdef MEDITRON_CUDA
  const char* backends = "cpu,cuda";
#else
  const char* backends = "cpu";
#endif
  static std::string info = mt::format("backend=%s blas=openblas openmp_max_threads=%d %s flags=%s", backends,
                                       omp_get_max_threads(), mt::cuda_info().c_str(), MT_BUILD_FLAGS);
  return info.c_str();
}

int mt_device_check(int32_t device) {
  return guard([&] {
    MT_CHECK(device == MT_DEVICE_CPU || device == MT_DEVICE_CUDA, "device %d is not 0 (cpu) or 1 (cuda)", device);
    if (device == MT_DEVICE_CUDA) mt::cuda_check_available();
  });
}

int mt_set_num_threads(int32_t n) {
  return guard([&] {
    g_threads = n > 0 ? n : 0;
    const int eff = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(eff);
    openblas_set_num_threads(eff);
  });
}

int mt_lr_at(const mt_optim_config* cfg, int64_t step, float* out_lr) {
  return guard([&] {
    MT_CHECK_PTR(out_lr);
    *out_lr = mt::lr_at(optim_ref(cfg), step);
  });
}

int mt_model_create(const mt_model_config* cfg, const mt_optim_config* optim, const mt_topology* topology,
                    mt_model** out) {
  return guard([&] {
    MT_CHECK_PTR(out);
    *out = nullptr;
    MT_CHECK(cfg != nullptr, "model config must not be null");
    auto* m = new mt_model(*cfg, optim_ref(optim), topology);
    std::lock_guard<std::mutex> lock(g_handles_mu);
    g_handles.insert(m);
    *out = m;
  });
}

int mt_model_free(mt_model* model) {
  return guard_model(model, [&] {
    if (model == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(g_handles_mu);
      if (!g_handles.erase(model))
        throw mt::Error(MT_ERR_INVALID_HANDLE, "model handle is not live (freed or foreign)");
    }
    delete model;
  });
}

int mt_model_set_optim(mt_model* model, const mt_optim_config* optim) {
  return guard_model(model, [&] { model_ref(model).opt = optim_ref(optim); });
}

int mt_model_param_count(mt_model* model, int32_t* out_count) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out_count);
    *out_count = (int32_t)model_ref(model).params.size();
  });
}

int mt_model_param_info(mt_model* model, int32_t index, char* name, size_t name_cap, int64_t* shape,
                        int32_t* ndim) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    MT_CHECK(index >= 0 && index < (int32_t)m.params.size(), "parameter index %d is outside [0, %zu)", index,
             m.params.size());
    MT_CHECK(name != nullptr && shape != nullptr && ndim != nullptr, "name, shape and ndim must not be null");
    const mt::ParamInfo& info = m.params[index];
    MT_CHECK(info.name.size() < name_cap, "name buffer of %zu bytes is too small for '%s'", name_cap,
             info.name.c_str());
    std::memcpy(name, info.name.c_str(), info.name.size() + 1);
    *ndim = (int32_t)info.shape.size();
    for (size_t i = 0; i < info.shape.size(); i++) shape[i] = info.shape[i];
  });
}

int mt_model_topology(mt_model* model, int32_t* out) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out);
    const mt::Model& m = model_ref(model);
    const mt::Topology& t = m.topo;
    const int32_t comm = !m.dev ? MT_COMM_HOST : m.dev->comm_staged() ? MT_COMM_STAGED : MT_COMM_NCCL;
    const int32_t v[13] = {t.tp,     t.pp,     t.dp,     t.tp_rank,        t.pp_rank,   t.dp_rank, m.layer0,
                           m.n_layers, t.zero1, mt::world_rank(), t.device, t.recompute, comm};
    std::copy(v, v + 13, out);
  });
}

int mt_model_param_slice(mt_model* model, int32_t index, int64_t* full_shape, int32_t* ndim, int32_t* split_dim,
                         int64_t* slice_start) {
  return guard_model(model, [&] {
    const mt::Model& m = model_ref(model);
    MT_CHECK(index >= 0 && index < (int32_t)m.params.size(), "parameter index %d is outside [0, %zu)", index,
             m.params.size());
    MT_CHECK(full_shape && ndim && split_dim && slice_start, "output pointers must not be null");
    const mt::ParamInfo& info = m.params[index];
    *ndim = (int32_t)info.full_shape.size();
    for (size_t i = 0; i < info.full_shape.size(); i++) full_shape[i] = info.full_shape[i];
    *split_dim = info.split_dim;
    *slice_start = info.slice_start;
  });
}

int mt_model_comm_stats(mt_model* model, double* out, int32_t reset) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out);
    mt::Model& m = model_ref(model);
    mt::Comm* comms[] = {m.tp_comm.get(), m.dp_comm.get(), m.pp_comm.get(), m.world.get(), m.mp_comm.get()};
    out[0] = m.tp_comm->bytes_sent, out[1] = m.dp_comm->bytes_sent, out[2] = m.pp_comm->bytes_sent;
    out[3] = m.pp_comm->recv_wait_s, out[4] = m.world->bytes_sent + m.mp_comm->bytes_sent;
    if (m.dev) {  // NCCL traffic of a device model
      double tp = 0, dp = 0, pp = 0;
      m.dev->comm_bytes(&tp, &dp, &pp, reset != 0);
      out[0] += tp, out[1] += dp, out[2] += pp;
    }
    if (reset)
      for (mt::Comm* c : comms) c->bytes_sent = 0, c->recv_wait_s = 0;
  });
}

int mt_model_optim_chunk_info(mt_model* model, int64_t* out) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out);
    const mt::Model& m = model_ref(model);
    out[0] = (int64_t)m.flat, out[1] = (int64_t)m.chunk0, out[2] = (int64_t)m.chunk;
  });
}

int mt_model_optim_chunk_read(mt_model* model, int32_t kind, float* dst, size_t n) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(dst);
    mt::Model& m = model_ref(model);
    float* chunk = optim_chunk(m, kind, n);
    if (m.dev) return m.dev->read(kind, 0, dst, n);
    std::memcpy(dst, chunk, n * sizeof(float));
  });
}

int mt_model_optim_chunk_write(mt_model* model, int32_t kind, const float* src, size_t n) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(src);
    for (size_t i = 0; i < n; i++) MT_CHECK(std::isfinite(src[i]), "optimizer chunk element %zu is not finite", i);
    mt::Model& m = model_ref(model);
    float* chunk = optim_chunk(m, kind, n);
    if (m.dev) return m.dev->write(kind, 0, src, n);
    std::memcpy(chunk, src, n * sizeof(float));
  });
}

int mt_model_tensor_read(mt_model* model, const char* name, int32_t kind, float* dst, size_t n) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    const mt::ParamInfo& info = tensor_args(m, name, n);
    MT_CHECK_PTR(dst);
    if (m.dev) return m.dev->read(kind, device_offset(m, info, kind), dst, n);
    std::memcpy(dst, buffer_of(m, info, kind), n * sizeof(float));
  });
}

int mt_model_tensor_write(mt_model* model, const char* name, int32_t kind, const float* src, size_t n) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    const mt::ParamInfo& info = tensor_args(m, name, n);
    MT_CHECK_PTR(src);
    for (size_t i = 0; i < n; i++)
      MT_CHECK(std::isfinite(src[i]), "tensor '%s' element %zu is not finite (%g)", name, i, src[i]);
    if (m.dev) return m.dev->write(kind, device_offset(m, info, kind), src, n);
    std::memcpy(buffer_of(m, info, kind), src, n * sizeof(float));
  });
}

int mt_model_get_step(mt_model* model, int64_t* out_step) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out_step);
    *out_step = model_ref(model).step;
  });
}

int mt_model_set_step(mt_model* model, int64_t step) {
  return guard_model(model, [&] {
    MT_CHECK(step >= 0, "step must be >= 0 (got %lld)", (long long)step);
    model_ref(model).step = step;
  });
}

int mt_model_zero_grad(mt_model* model) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    if (m.dev) return m.dev->zero_grad();
    std::fill(m.g.begin(), m.g.end(), 0.0f);
  });
}

int mt_model_forward_backward(mt_model* model, const int32_t* tokens, const int32_t* targets,
                              const float* loss_mask, const int32_t* segment_ids, size_t n, int32_t batch,
                              int32_t seq, float loss_denominator, double* out_loss_sum) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    MT_CHECK(targets != nullptr && loss_mask != nullptr && out_loss_sum != nullptr,
             "targets, loss_mask and out_loss_sum must not be null");
    MT_CHECK(std::isfinite(loss_denominator) && loss_denominator > 0, "loss_denominator must be > 0 (got %g)",
             loss_denominator);
    m.check_batch(tokens, targets, loss_mask, n, batch, seq, segment_ids);
    *out_loss_sum = m.forward_backward(tokens, targets, loss_mask, batch, seq, loss_denominator, segment_ids);
  });
}

int mt_model_optimizer_step(mt_model* model, mt_step_result* out) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out);
    out->skipped = model_ref(model).optimizer_step(&out->grad_norm, &out->lr) ? 0.0f : 1.0f;
  });
}

int mt_model_train_step(mt_model* model, const int32_t* tokens, const int32_t* targets, const float* loss_mask,
                        const int32_t* segment_ids, size_t n, int32_t n_micro, int32_t batch, int32_t seq,
                        mt_step_result* out) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    MT_CHECK(targets != nullptr && loss_mask != nullptr && out != nullptr,
             "targets, loss_mask and out must not be null");
    MT_CHECK(n_micro > 0, "n_micro must be positive (got %d)", n_micro);
    MT_CHECK(batch > 0 && seq > 0, "batch (%d) and seq (%d) must be positive", batch, seq);
    const size_t per = (size_t)batch * seq;
    MT_CHECK(n == per * n_micro, "buffers hold %zu tokens but n_micro %d x batch %d x seq %d = %zu", n, n_micro,
             batch, seq, per * n_micro);
    MT_CHECK(m.topo.pp == 1 || mt::bwd_tag(n_micro - 1) <= mt::max_message_tag(),
             "n_micro %d needs pipeline message tags up to %d, above this MPI's MPI_TAG_UB %d: use fewer, larger "
             "micro-batches",
             n_micro, mt::bwd_tag(n_micro - 1), mt::max_message_tag());
    for (int32_t i = 0; i < n_micro; i++)
      m.check_batch(tokens + i * per, targets + i * per, loss_mask + i * per, per, batch, seq,
                    segment_ids ? segment_ids + i * per : nullptr);
    m.train_step(tokens, targets, loss_mask, n_micro, batch, seq, out, segment_ids);
  });
}

int mt_model_eval_loss(mt_model* model, const int32_t* tokens, const int32_t* targets, const float* loss_mask,
                       const int32_t* segment_ids, size_t n, int32_t batch, int32_t seq, double* out_loss_sum,
                       double* out_count) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    MT_CHECK(targets != nullptr && loss_mask != nullptr && out_loss_sum != nullptr && out_count != nullptr,
             "targets, loss_mask, out_loss_sum and out_count must not be null");
    m.check_batch(tokens, targets, loss_mask, n, batch, seq, segment_ids);
    m.eval_loss(tokens, targets, loss_mask, batch, seq, out_loss_sum, out_count, segment_ids);
  });
}

int mt_model_logits(mt_model* model, const int32_t* tokens, const int32_t* segment_ids, size_t n, int32_t batch,
                    int32_t seq, float* out, size_t out_n) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    m.check_batch(tokens, nullptr, nullptr, n, batch, seq, segment_ids);
    MT_CHECK_PTR(out);
    MT_CHECK(out_n == n * (size_t)m.cfg.vocab_size, "logits buffer holds %zu floats, need %zu x %d = %zu", out_n, n,
             m.cfg.vocab_size, n * (size_t)m.cfg.vocab_size);
    if (m.dev) return m.dev->logits(tokens, batch, seq, out, segment_ids);
    m.forward_hidden(tokens, batch, seq, segment_ids);
    mt::lm_head_logits(out, m.slots[0].h_f.data(), m.P(m.head_idx), (int)n, m.cfg.dim, m.cfg.vocab_size, m.Vp);
  });
}

int mt_kv_create(mt_model* model, int32_t max_seqs, int32_t max_len, mt_kv** out) {
  return guard_model(model, [&] {
    MT_CHECK_PTR(out);
    *out = nullptr;
    mt::Model& m = model_ref(model);
    MT_CHECK(m.topo.tp == 1 && m.topo.pp == 1, "a KV cache needs the whole model on one rank");
    MT_CHECK(max_seqs > 0 && max_len > 0, "max_seqs (%d) and max_len (%d) must be positive", max_seqs, max_len);
    MT_CHECK(max_len <= m.cfg.max_seq, "max_len %d exceeds the model's max_seq %d", max_len, m.cfg.max_seq);
    auto* kv = new mt_kv();
    kv->model = &m;
    kv->max_seqs = max_seqs, kv->max_len = max_len;
    kv->len.assign(max_seqs, 0);
    const size_t n = (size_t)max_seqs * max_len * m.KVHl * m.hd;
    if (m.dev) {
      kv->dev = m.dev->kv_create(max_seqs, max_len);
    } else {
      kv->k.assign(m.n_layers, std::vector<float>(n));
      kv->v.assign(m.n_layers, std::vector<float>(n));
    }
    std::lock_guard<std::mutex> lock(g_handles_mu);
    g_handles.insert(kv);
    *out = kv;
  });
}

static mt::KvCache& kv_ref(mt_kv* kv) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  if (kv == nullptr) throw mt::Error(MT_ERR_INVALID_HANDLE, "KV cache handle is null");
  if (!g_handles.count(kv)) throw mt::Error(MT_ERR_INVALID_HANDLE, "KV cache handle is not live (freed or foreign)");
  return *kv;
}

static int check_seq(const mt::KvCache& kv, int32_t seq) {
  MT_CHECK(seq >= 0 && seq < kv.max_seqs, "sequence %d is outside [0, %d)", seq, kv.max_seqs);
  return seq;
}

int mt_kv_free(mt_kv* kv) {
  return guard([&] {
    if (kv == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(g_handles_mu);
      if (!g_handles.erase(kv)) throw mt::Error(MT_ERR_INVALID_HANDLE, "KV cache handle is not live (freed or foreign)");
    }
    delete kv;
  });
}

int mt_kv_reset(mt_kv* kv, int32_t seq) {
  return guard([&] {
    mt::KvCache& c = kv_ref(kv);
    c.len[check_seq(c, seq)] = 0;
  });
}

int mt_kv_copy(mt_kv* kv, int32_t src, int32_t dst, int32_t length) {
  return guard([&] {
    mt::KvCache& c = kv_ref(kv);
    check_seq(c, src), check_seq(c, dst);
    MT_CHECK(length >= 0 && length <= c.len[src], "copy of %d tokens, sequence %d holds %d", length, src, c.len[src]);
    if (c.dev) {
      c.model->dev->kv_copy(c, src, dst, length);
      c.len[dst] = length;
      return;
    }
    const size_t row = (size_t)c.model->KVHl * c.model->hd;
    for (size_t l = 0; l < c.k.size(); l++) {
      std::copy_n(c.k[l].data() + (size_t)src * c.max_len * row, length * row, c.k[l].data() + (size_t)dst * c.max_len * row);
      std::copy_n(c.v[l].data() + (size_t)src * c.max_len * row, length * row, c.v[l].data() + (size_t)dst * c.max_len * row);
    }
    c.len[dst] = length;
  });
}

int mt_kv_length(mt_kv* kv, int32_t seq, int32_t* out) {
  return guard([&] {
    MT_CHECK_PTR(out);
    mt::KvCache& c = kv_ref(kv);
    *out = c.len[check_seq(c, seq)];
  });
}

int mt_model_decode(mt_model* model, mt_kv* kv, const int32_t* seq_ids, const int32_t* tokens,
                    const uint8_t* want_logits, size_t n, float* logits, size_t logits_n) {
  return guard_model(model, [&] {
    mt::Model& m = model_ref(model);
    mt::KvCache& c = kv_ref(kv);
    MT_CHECK(c.model == &m, "the KV cache belongs to another model");
    MT_CHECK(seq_ids != nullptr && tokens != nullptr, "seq_ids and tokens must not be null");
    MT_CHECK(n > 0 && n <= (size_t)INT32_MAX, "row count %zu is invalid", n);
    size_t wanted = 0;
    for (size_t i = 0; i < n; i++) {
      MT_CHECK(tokens[i] >= 0 && tokens[i] < m.cfg.vocab_size, "tokens[%zu] = %d is outside the vocabulary [0, %d)",
               i, tokens[i], m.cfg.vocab_size);
      if (i > 0 && seq_ids[i] != seq_ids[i - 1])
        for (size_t j = 0; j + 1 < i; j++)
          MT_CHECK(seq_ids[j] != seq_ids[i], "rows of sequence %d are not consecutive (rows %zu and %zu)", seq_ids[i], j, i);
      wanted += want_logits == nullptr || want_logits[i] != 0;
    }
    MT_CHECK(logits_n == wanted * (size_t)m.cfg.vocab_size, "logits buffer holds %zu floats, need %zu x %d",
             logits_n, wanted, m.cfg.vocab_size);
    MT_CHECK(wanted == 0 || logits != nullptr, "logits must not be null");
    m.decode(c, seq_ids, tokens, want_logits, (int)n, logits);
  });
}

static void check_attention_args(int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t hd) {
  MT_CHECK(B > 0 && T > 0 && H > 0 && KVH > 0 && hd > 0, "attention sizes must be positive (B %d T %d H %d KVH %d hd %d)",
           B, T, H, KVH, hd);
  MT_CHECK(H % KVH == 0, "n_kv_heads %d does not divide n_heads %d", KVH, H);
}

int mt_op_attention_forward(const float* q, const float* k, const float* v, const int32_t* segment_ids, float* out,
                            float* lse, int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t hd) {
  return guard([&] {
    check_attention_args(B, T, H, KVH, hd);
    MT_CHECK(q && k && v && out && lse, "attention buffers must not be null");
    if (segment_ids) mt::check_segment_ids(segment_ids, (size_t)B * T, T);
    const size_t qs = (size_t)H * hd, ks = (size_t)KVH * hd;
    mt::attention_forward(out, lse, q, k, v, B, T, H, KVH, hd, qs, ks, qs, segment_ids);
  });
}

int mt_op_attention_backward(const float* q, const float* k, const float* v, const int32_t* segment_ids,
                             const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv,
                             int32_t B, int32_t T, int32_t H, int32_t KVH, int32_t hd) {
  return guard([&] {
    check_attention_args(B, T, H, KVH, hd);
    MT_CHECK(q && k && v && out && lse && dout && dq && dk && dv, "attention buffers must not be null");
    if (segment_ids) mt::check_segment_ids(segment_ids, (size_t)B * T, T);
    const size_t qs = (size_t)H * hd, ks = (size_t)KVH * hd;
    mt::attention_backward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, hd, qs, ks, qs, segment_ids);
  });
}

int mt_bench_sgemm(int32_t M, int32_t N, int32_t K, int32_t iters, double* out_gflops) {
  return guard([&] {
    MT_CHECK(M > 0 && N > 0 && K > 0 && iters > 0, "sgemm sizes and iters must be positive");
    MT_CHECK_PTR(out_gflops);
    std::vector<float> a((size_t)M * K, 0.5f), b((size_t)K * N, 0.25f), c((size_t)M * N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f,
                c.data(), N);  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f,
                  c.data(), N);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    *out_gflops = 2.0 * M * N * K * iters / s / 1e9;
  });
}

}  // extern "C"
