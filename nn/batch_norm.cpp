#include "nn/batch_norm.h"

#include "autograd/grad_mode.h"
#include "nn/parallel/sync_batch_norm.h"
#include "ops/ops.h"

namespace ctxpool::nn {

BatchNorm2d::BatchNorm2d(int64_t c, BatchNormOptions o) : Module("BatchNorm2d"), num_features(c), options(o) {
  CTXPOOL_CHECK(c > 0, "BatchNorm2d: num_features must be positive, got ", c);
  CTXPOOL_CHECK(options.eps >= 0, "BatchNorm2d: eps must be non-negative, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", ones({c}, options.dtype));
    bias = register_parameter("bias", zeros({c}, options.dtype));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({c}, options.dtype));
    running_var = register_buffer("running_var", ones({c}, options.dtype));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 4, "BatchNorm2d: expected 4-D input [B, C, H, W], got shape ",
                x.defined() ? shape_str(x.sizes()) : std::string("(undefined)"));
  // As PyTorch: batch statistics while training, or always when there are no running ones.
  const bool use_batch_stats = is_training() || !options.track_running_stats;
  const bool update = is_training() && options.track_running_stats;
  double momentum = options.momentum.value_or(0.0);
  if (update && !options.momentum) momentum = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>() + 1);
  const bool synced = use_batch_stats && communicator && communicator->size() > 1;
  Tensor y = synced ? parallel::sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, options.eps,
                                                communicator)
                    : ops::batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, momentum, options.eps);
  if (update) {
    autograd::NoGradGuard no_grad;
    num_batches_tracked.add_(ops::scalar_like(1, num_batches_tracked));
  }
  return y;
}

}  // namespace ctxpool::nn
