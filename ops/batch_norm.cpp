// batch_norm as a composite of ops (mean, sub, mul, rsqrt, add), so its gradients, double backward
// and every device come from them. The running statistics are updated in place under NoGradGuard:
// they are state, not part of the graph.
//
//   training:  mean, var = statistics of x over every dim but 1 (var biased, as the normalisation uses)
//              running_mean <- (1 - momentum) running_mean + momentum mean
//              running_var  <- (1 - momentum) running_var + momentum var * n / (n - 1)   (unbiased)
//   otherwise: mean, var = running_mean, running_var (constants: no gradient flows to them)
//   y = (x - mean) * (rsqrt(var + eps) * weight) + bias      (stats and parameters viewed as [1, C, 1, ...])
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

void check_channel_vector(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  check_same("batch_norm", x, t);
  const int64_t channels = x.sizes()[1];
  CTXPOOL_CHECK(t.sizes() == Shape{channels}, "batch_norm: ", what, " should have shape [", channels,
                "] (the channels of x ", x.sizes(), "), got ", t.sizes());
}

void check_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                      const Tensor& bias, bool training, double eps) {
  check_floating("batch_norm", x);
  CTXPOOL_CHECK(x.dim() >= 2, "batch_norm: expected x [B, C, ...] with at least 2 dims, got shape ", x.sizes(),
                " (", x.dtype(), " on ", x.device(), ")");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  check_channel_vector(x, weight, "weight");
  check_channel_vector(x, bias, "bias");
  CTXPOOL_CHECK(running_mean.defined() == running_var.defined(),
                "batch_norm: running_mean and running_var must be given together (x ", x.sizes(), ")");
  CTXPOOL_CHECK(eps >= 0, "batch_norm: eps must be non-negative, got ", eps);
  if (!training) {
    CTXPOOL_CHECK(running_mean.defined(), "batch_norm: running_mean and running_var must be defined in evaluation "
                  "mode (training = false; x ", x.sizes(), ")");
    return;
  }
  const int64_t per_channel = x.sizes()[1] ? x.numel() / x.sizes()[1] : 0;
  CTXPOOL_CHECK(per_channel > 1, "batch_norm: expected more than 1 value per channel when training, got input of "
                "shape ", x.sizes(), " (", per_channel, " per channel)");
  for (const Tensor* stat : {&running_mean, &running_var}) {
    CTXPOOL_CHECK(!stat->defined() || !stat->requires_grad(), "batch_norm: ",
                  stat == &running_mean ? "running_mean" : "running_var", " requires grad, but running statistics "
                  "are updated in place outside autograd (register it as a buffer, not a parameter)");
  }
}

// running <- (1 - momentum) running + momentum batch_stat, in place, outside autograd.
void update_running(const Tensor& running, const Tensor& batch_stat, double momentum) {
  autograd::NoGradGuard no_grad;
  const Tensor stat = reshape(batch_stat.detach(), running.sizes());
  copy_(running, add(mul(running, scalar_like(1.0 - momentum, running)), mul(stat, scalar_like(momentum, stat))));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  check_batch_norm(x, running_mean, running_var, weight, bias, training, eps);
  const int64_t channels = x.sizes()[1];
  Shape stat_shape(static_cast<size_t>(x.dim()), 1);  // [1, C, 1, ...]: broadcasts over x
  stat_shape[1] = channels;

  Tensor centered, var;
  if (training) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (d != 1) dims.push_back(d);
    const Tensor batch_mean = mean(x, dims, true);
    centered = sub(x, batch_mean);
    var = mean(mul(centered, centered), dims, true);
    if (running_mean.defined()) {
      const double count = static_cast<double>(x.numel() / channels);
      update_running(running_mean, batch_mean, momentum);
      update_running(running_var, mul(var.detach(), scalar_like(count / (count - 1), var)), momentum);
    }
  } else {
    centered = sub(x, reshape(running_mean.detach(), stat_shape));
    var = reshape(running_var.detach(), stat_shape);
  }
  Tensor scale = rsqrt(add(var, scalar_like(eps, var)));
  if (weight.defined()) scale = mul(scale, reshape(weight, stat_shape));
  Tensor y = mul(centered, scale);
  if (bias.defined()) y = add(y, reshape(bias, stat_shape));
  return y;
}

}  // namespace ctxpool::ops
