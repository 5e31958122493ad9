// device.hpp — the model-level backend interface of an accelerator (the CUDA backend, cuda/backend.cu). A Model
// created with device "cuda" keeps its parameter table, topology and host communicators, and hands every
// model-level call to its DeviceBackend, which owns the device buffers (bf16 parameters and activations, fp32
// master weights, gradients and AdamW state). Built without CUDA, cuda_stub.cpp says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "meditron.h"

namespace mt {

struct Model;
struct KvCache;

// A KV cache's device buffers.
struct DeviceKv {
  virtual ~DeviceKv() = default;
};

struct DeviceBackend {
  virtual ~DeviceBackend() = default;
  // The same contracts as the Model methods of the same names (model.hpp); `seg` (null: one segment per row)
  // are the segment ids of packed rows, already checked.
  virtual void train_step(const int32_t* tokens, const int32_t* targets, const float* mask, int n_micro, int B,
                          int T, mt_step_result* out, const int32_t* seg) = 0;
  virtual double forward_backward(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T,
                                  float denom, const int32_t* seg) = 0;
  virtual bool optimizer_step(float* grad_norm, float* lr) = 0;
  virtual void eval_loss(const int32_t* tokens, const int32_t* targets, const float* mask, int B, int T,
                         double* loss_sum, double* count, const int32_t* seg) = 0;
  // Logits of [B, T] tokens (true vocabulary) into host memory; single rank.
  virtual void logits(const int32_t* tokens, int B, int T, float* out, const int32_t* seg) = 0;
  virtual void zero_grad() = 0;
  // n floats at `offset` of a flat buffer (MT_TENSOR_PARAM: the fp32 master weights, GRAD, ADAM_M/V: offsets
  // within this rank's optimizer chunk) to / from host memory. Writing PARAM also refreshes the bf16 copy.
  virtual void read(int kind, size_t offset, float* dst, size_t n) = 0;
  virtual void write(int kind, size_t offset, const float* src, size_t n) = 0;
  virtual std::unique_ptr<DeviceKv> kv_create(int max_seqs, int max_len) = 0;
  virtual void kv_copy(KvCache& kv, int src, int dst, int length) = 0;
  // Bytes the device communicators (NCCL) of the TP, DP and PP groups sent since the last reset (traffic staged
  // through the host communicators is counted by those); `reset` zeroes the counters.
  virtual void comm_bytes(double* tp, double* dp, double* pp, bool reset) = 0;
  // Whether the TP/DP/PP groups stage through host memory (ranks share a GPU) instead of using NCCL.
  virtual bool comm_staged() const = 0;
  virtual void decode(KvCache& kv, const int32_t* seq, const int32_t* tokens, const uint8_t* want, int rows,
                      float* logits) = 0;
};

// Throws mt::Error unless a CUDA device can be used: built without CUDA, no device, or a driver too old.
void cuda_check_available();
// The CUDA backend of `m` (its host parameters are uploaded; the caller may then free them).
std::unique_ptr<DeviceBackend> make_cuda_backend(Model& m);
// "cuda=<device name>, <n> devices" or "cuda=off".
std::string cuda_info();

}  // namespace mt
