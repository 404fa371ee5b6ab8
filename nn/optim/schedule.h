// Learning-rate schedules: a function of the step (0-based), so a resumed run gets the same rates.
#pragma once
#include <cmath>
#include <cstdint>

namespace ctxpool::nn::optim {

// Linear warm-up from peak/warmup to peak over `warmup` steps, then cosine decay to
// min_ratio * peak at the last step (total_steps - 1).
struct WarmupCosine {
  double peak = 1e-3;
  int64_t warmup = 0;
  int64_t total_steps = 1;
  double min_ratio = 0.1;

  double operator()(int64_t step) const {
    if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
    const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup - 1));
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
    const double min_lr = min_ratio * peak;
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace ctxpool::nn::optim
