// optim.cpp — see optim.hpp for the math.
#include "optim.hpp"

#include <cmath>
#include <vector>

#include "common.hpp"

namespace mt {

void optim_config_check(const mt_optim_config& c) {
  MT_CHECK(c.struct_size == (int32_t)sizeof(mt_optim_config), "mt_optim_config.struct_size is %d, expected %d",
           c.struct_size, (int)sizeof(mt_optim_config));
  MT_CHECK(std::isfinite(c.lr) && c.lr >= 0, "optimizer lr must be a finite number >= 0 (got %g)", c.lr);
  MT_CHECK(std::isfinite(c.min_lr) && c.min_lr >= 0 && c.min_lr <= c.lr,
           "optimizer min_lr must be in [0, lr] (got %g with lr %g)", c.min_lr, c.lr);
  MT_CHECK(c.warmup_steps >= 0, "optimizer warmup_steps must be >= 0 (got %d)", c.warmup_steps);
  MT_CHECK(c.decay_steps >= c.warmup_steps, "optimizer decay_steps (%d) must be >= warmup_steps (%d)",
           c.decay_steps, c.warmup_steps);
  MT_CHECK(c.beta1 >= 0 && c.beta1 < 1, "optimizer beta1 must be in [0, 1) (got %g)", c.beta1);
  MT_CHECK(c.beta2 >= 0 && c.beta2 < 1, "optimizer beta2 must be in [0, 1) (got %g)", c.beta2);
  MT_CHECK(std::isfinite(c.eps) && c.eps > 0, "optimizer eps must be > 0 (got %g)", c.eps);
  MT_CHECK(std::isfinite(c.weight_decay) && c.weight_decay >= 0, "optimizer weight_decay must be >= 0 (got %g)",
           c.weight_decay);
  MT_CHECK(std::isfinite(c.grad_clip), "optimizer grad_clip must be finite (got %g)", c.grad_clip);
}

float lr_at(const mt_optim_config& c, int64_t step) {
  if (step <= 0) return 0.0f;
  if (step <= c.warmup_steps) return (float)((double)c.lr * step / c.warmup_steps);
  if (step > c.decay_steps) return c.min_lr;
  const double progress = (double)(step - c.warmup_steps) / (double)(c.decay_steps - c.warmup_steps);
  return (float)(c.min_lr + 0.5 * ((double)c.lr - c.min_lr) * (1.0 + std::cos(M_PI * progress)));
}

double sum_squares(const float* g, size_t n) {
  constexpr size_t BLOCK = 1 << 16;
  const size_t nb = (n + BLOCK - 1) / BLOCK;
  std::vector<double> part(nb, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t b = 0; b < nb; b++) {
    double s = 0;
    const size_t end = std::min(n, (b + 1) * BLOCK);
    for (size_t i = b * BLOCK; i < end; i++) s += (double)g[i] * g[i];
    part[b] = s;
  }
  double total = 0;
  for (double s : part) total += s;
  return total;
}

void adamw_update(float* p, const float* grad, float grad_scale, float* m, float* v, size_t n, int64_t t,
                  float lr, float beta1, float beta2, float eps, float wd) {
  const float bc1 = (float)(1.0 - std::pow((double)beta1, (double)t));
  const float bc2 = (float)(1.0 - std::pow((double)beta2, (double)t));
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float g = grad_scale * grad[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * g;
    v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
    const float mhat = m[i] / bc1, vhat = v[i] / bc2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}

}  // namespace mt
