// optim.hpp — AdamW, the warmup + cosine + min-lr schedule and global-norm clipping.
#pragma once

#include <cstddef>
#include <cstdint>

#include "meditron.h"

namespace mt {

// Validates hyperparameters (finite, lr >= min_lr >= 0, betas in [0, 1), eps > 0, …); throws mt::Error.
void optim_config_check(const mt_optim_config& c);

// lr(step), step 1-based (step 0 → 0):
//   step ≤ warmup:                lr · step / warmup
//   warmup < step ≤ decay_steps:  min_lr + ½(lr − min_lr)(1 + cos(π · (step − warmup) / (decay_steps − warmup)))
//   step > decay_steps:           min_lr
float lr_at(const mt_optim_config& c, int64_t step);

// Σ g² over n values in fixed 64Ki blocks summed in order: the same bits for any thread count.
double sum_squares(const float* g, size_t n);

// Decoupled AdamW on n values at step t (1-based), in place, with the clipping coefficient folded in
// (g = grad_scale · grad):
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  m̂ = m/(1−β1ᵗ);  v̂ = v/(1−β2ᵗ)
//   p −= lr · (m̂ / (√v̂ + eps) + wd · p)
void adamw_update(float* p, const float* grad, float grad_scale, float* m, float* v, size_t n, int64_t t,
                  float lr, float beta1, float beta2, float eps, float wd);

}  // namespace mt
