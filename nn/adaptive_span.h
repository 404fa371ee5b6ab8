// Adaptive attention span (Sukhbaatar et al. 2019), the learned-context-size baseline of
// ../shared/PAPER.md: one span parameter z_h in [0, 1] per head and a soft mask over the distance
// x = |i - j| between query and key,
//   m_h(x) = clamp((z_h S - x) / R + 1, 0, 1)        (S = max span, R = ramp),
// multiplied into the attention probabilities, which are then renormalised. The training loss gets
// lambda * S * mean(z) per layer; z is clamped to [0, 1] after every optimizer step.
#pragma once
#include "nn/module.h"

namespace ctxpool::nn {

struct AdaptiveSpanOptions {
  int64_t max_span = 128;  // S, in tokens
  double ramp = 32.0;      // R, in tokens
  double init = 0.0;       // z at initialisation (0: a span of R tokens to start with)
  double lambda = 2e-6;    // penalty weight
};

class AdaptiveSpanMask : public Module {
 public:
  AdaptiveSpanMask(int64_t heads, const AdaptiveSpanOptions& options = {}, DType dtype = kFloat32);
  // probs [B, heads, T, S] (rows sum to 1) -> the masked, renormalised probabilities.
  Tensor forward(const Tensor& probs) override;
  // lambda * S * mean(z), differentiable.
  Tensor penalty() const;
  // z := clamp(z, 0, 1), in place (after an optimizer step).
  void clamp_();
  // The mean span over heads, in tokens: S * mean(z).
  double mean_span() const;

  Tensor z;  // [heads]
  AdaptiveSpanOptions options;
};

}  // namespace ctxpool::nn
