#include "nn/adaptive_span.h"

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ctxpool::nn {

AdaptiveSpanMask::AdaptiveSpanMask(int64_t heads, const AdaptiveSpanOptions& o, DType dtype)
    : Module("AdaptiveSpanMask"), options(o) {
  CTXPOOL_CHECK(heads > 0 && o.max_span > 0 && o.ramp > 0 && o.lambda >= 0 && o.init >= 0 && o.init <= 1,
                "AdaptiveSpanMask: expected heads > 0, max_span > 0, ramp > 0, lambda >= 0 and init in [0, 1], got "
                "heads ", heads, ", max_span ", o.max_span, ", ramp ", o.ramp, ", lambda ", o.lambda, ", init ", o.init);
  z = register_parameter("z", full({heads}, o.init, dtype));
}

Tensor AdaptiveSpanMask::forward(const Tensor& probs) {
  CTXPOOL_CHECK(probs.defined() && probs.dim() == 4 && probs.sizes()[1] == z.numel(),
                "AdaptiveSpanMask: expected probabilities [B, ", z.numel(), ", T, S], got ",
                probs.defined() ? shape_str(probs.sizes()) : "undefined");
  const int64_t t = probs.sizes()[2], s = probs.sizes()[3];
  const TensorOptions opts = TensorOptions(probs.dtype()).device(probs.device());
  // distance [T, S] = |i - j|, with queries and keys aligned at the end (keys s - t .. s - 1 are the queries')
  const TensorOptions index_opts = TensorOptions(kInt64).device(probs.device());
  const Tensor qpos = ops::unsqueeze(ops::add(arange(t, index_opts).to(probs.dtype()), scalar_tensor(double(s - t), opts)), 1);
  const Tensor dist = ops::abs(ops::sub(qpos, ops::unsqueeze(arange(s, index_opts).to(probs.dtype()), 0)));
  const double span = static_cast<double>(options.max_span), ramp = options.ramp;
  // m [heads, T, S] = clamp((z S - x) / R + 1, 0, 1)
  const Tensor zs = ops::reshape(ops::mul(z, ops::scalar_like(span / ramp, z)), {-1, 1, 1});
  const Tensor m = ops::clamp(ops::add(ops::sub(zs, ops::mul(dist, ops::scalar_like(1.0 / ramp, dist))),
                                       ops::scalar_like(1.0, dist)), 0.0, 1.0);
  const Tensor masked = ops::mul(probs, m);
  // renormalise (the 1e-8 keeps a row whose whole span was masked away finite, as in the original code)
  return ops::div(masked, ops::add(ops::sum(masked, {-1}, true), ops::scalar_like(1e-8, masked)));
}

Tensor AdaptiveSpanMask::penalty() const {
  return ops::mul(ops::mean(z), ops::scalar_like(options.lambda * static_cast<double>(options.max_span), z));
}

void AdaptiveSpanMask::clamp_() {
  autograd::NoGradGuard no_grad;
  z.copy_(ops::clamp(z, 0.0, 1.0));
}

double AdaptiveSpanMask::mean_span() const {
  autograd::NoGradGuard no_grad;
  return ops::mean(z).to(kFloat64).item() * static_cast<double>(options.max_span);
}

}  // namespace ctxpool::nn
