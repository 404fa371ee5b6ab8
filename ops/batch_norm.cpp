// batch_norm with its own backward over three per-channel kernels (Kernels::batch_norm_stats,
// batch_norm_grad_sums, channel_affine): one pass for the statistics, one for y, and in backward one
// for the two sums and one for dx, instead of the dozen passes and temporaries of the composite of
// ops. The composite (batch_norm_composite below) is kept for the create_graph backward (second
// derivatives) and for empty inputs. The running statistics are updated in place under NoGradGuard:
// they are state, not part of the graph.
//
//   training:  mean, var = statistics of x over every dim but 1 (var biased, as the normalisation uses)
//              running_mean <- (1 - momentum) running_mean + momentum mean
//              running_var  <- (1 - momentum) running_var + momentum var * n / (n - 1)   (unbiased)
//   otherwise: mean, var = running_mean, running_var (constants: no gradient flows to them)
//   y = (x - mean) * (rsqrt(var + eps) * weight) + bias      (stats and parameters viewed as [1, C, 1, ...])
//
// The backward, with k = rstd * weight, n values per channel, sum_g = sum of g and sum_gc = sum of
// g (x - mean) per channel:
//   dbias = sum_g,  dweight = rstd * sum_gc,
//   dx = k (g - sum_g / n - (x - mean) rstd^2 sum_gc / n)   (training: the statistics depend on x)
//   dx = k g                                                (running statistics: constants)
#include "ops/kernels.h"
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

// The composite of ops, on checked inputs.
Tensor batch_norm_composite(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
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

// The gradients written with differentiable ops, for the create_graph backward (so that second
// derivatives work): with xhat = (x - mean) rstd and gw = g * weight,
//   training: dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), the statistics recomputed from x;
//   running:  dx = rstd gw, the statistics constants;
//   dweight = sum(g xhat), dbias = sum(g), over every dim but 1.
Grads batch_norm_grads_composite(const Tensor& x, const Tensor& weight, const Tensor& running_mean,
                                 const Tensor& running_var, bool training, double eps, const Tensor& g,
                                 const LambdaNode& n) {
  Shape stat_shape(static_cast<size_t>(x.dim()), 1);  // [1, C, 1, ...]
  stat_shape[1] = x.sizes()[1];
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);
  Tensor centered, var;
  if (training) {
    centered = sub(x, mean(x, dims, true));
    var = mean(mul(centered, centered), dims, true);
  } else {
    centered = sub(x, reshape(running_mean, stat_shape));
    var = reshape(running_var, stat_shape);
  }
  const Tensor rstd = rsqrt(add(var, scalar_like(eps, var)));
  const Tensor xhat = mul(centered, rstd);
  const Tensor gw = weight.defined() ? mul(g, reshape(weight, stat_shape)) : g;
  Grads grads(3);
  if (n.needs_input_grad(0)) {
    grads[0] = training ? mul(rstd, sub(sub(gw, mean(gw, dims, true)), mul(xhat, mean(mul(gw, xhat), dims, true))))
                        : mul(rstd, gw);
  }
  if (n.needs_input_grad(1)) grads[1] = sum(mul(g, xhat), dims);
  if (n.needs_input_grad(2)) grads[2] = sum(g, dims);
  return grads;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  check_batch_norm(x, running_mean, running_var, weight, bias, training, eps);
  if (x.numel() == 0) return batch_norm_composite(x, running_mean, running_var, weight, bias, training, momentum, eps);
  const int64_t channels = x.sizes()[1], per_channel = x.numel() / channels;
  const Shape layout = {x.sizes()[0], channels, per_channel / x.sizes()[0]};  // [B, C, S]
  Tensor mean, var, rstd, scale;
  Tensor y = new_empty(x.sizes(), x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;  // the statistics and coefficients are constants of the graph below
    const Tensor x3 = reshape(contiguous(x.detach()), layout);
    if (training) {
      mean = new_empty({channels}, x.dtype(), x.device());
      var = new_empty({channels}, x.dtype(), x.device());
      kernel(&Kernels::batch_norm_stats, "batch_norm", x)(x3, mean, var);
      if (running_mean.defined()) {
        const double count = static_cast<double>(per_channel);
        update_running(running_mean, mean, momentum);
        update_running(running_var, mul(var, scalar_like(count / (count - 1), var)), momentum);
      }
    } else {
      mean = running_mean.detach().clone();  // (the running statistics change in place later)
      var = running_var.detach().clone();
    }
    rstd = rsqrt(add(var, scalar_like(eps, var)));
    scale = weight.defined() ? mul(rstd, weight.detach()) : rstd;
    const Tensor shift_add = bias.defined() ? contiguous(bias.detach()) : zeros_like(mean);
    kernel(&Kernels::channel_affine, "batch_norm", x)(x3, mean, scale, shift_add, Tensor(), Tensor(),
                                                      reshape(y, layout));
  }
  return record("batch_norm", {x, weight, bias}, y,
                [sx = SavedTensor(x), sw = SavedTensor(weight), mean, var, rstd, scale, training, eps,
                 layout](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sx.unpack("batch_norm"), w = sw.unpack("batch_norm");
    if (autograd::GradMode::is_enabled()) return batch_norm_grads_composite(x, w, mean, var, training, eps, g, n);
    const Tensor x3 = reshape(contiguous(x), layout), g3 = reshape(contiguous(g), layout);
    const double count = static_cast<double>(layout[0] * layout[2]);
    Tensor sum_g = new_empty(mean.sizes(), mean.dtype(), mean.device());
    Tensor sum_gc = new_empty(mean.sizes(), mean.dtype(), mean.device());
    kernel(&Kernels::batch_norm_grad_sums, "batch_norm backward", x)(x3, g3, mean, sum_g, sum_gc);
    Grads grads(3);
    if (n.needs_input_grad(0)) {
      Tensor dx = new_empty(x.sizes(), x.dtype(), x.device());
      if (training) {  // dx = scale g + k2 (x - mean) - scale sum_g / n, k2 = -scale rstd^2 sum_gc / n
        const Tensor k2 = neg(div(mul(mul(scale, mul(rstd, rstd)), sum_gc), scalar_like(count, sum_gc)));
        const Tensor k3 = neg(div(mul(scale, sum_g), scalar_like(count, sum_g)));
        kernel(&Kernels::channel_affine, "batch_norm backward", x)(x3, mean, k2, k3, g3, scale, reshape(dx, layout));
      } else {  // dx = scale g
        kernel(&Kernels::channel_affine, "batch_norm backward", x)(g3, zeros_like(mean), scale, zeros_like(mean),
                                                                   Tensor(), Tensor(), reshape(dx, layout));
      }
      grads[0] = dx;
    }
    if (n.needs_input_grad(1)) grads[1] = mul(rstd, sum_gc);
    if (n.needs_input_grad(2)) grads[2] = sum_g;
    return grads;
  });
}

}  // namespace ctxpool::ops
