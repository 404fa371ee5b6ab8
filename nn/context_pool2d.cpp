#include "nn/context_pool2d.h"

#include <cmath>

#include "autograd/grad_mode.h"

namespace ctxpool::nn {

ContextPool2d::ContextPool2d(int64_t dim, const ContextPool2dOptions& options, DType dtype)
    : Module("ContextPool2d"), options_(options) {
  options_.pool = options.pool.resolved();  // errors for bad options now, not at the first forward
  CTXPOOL_CHECK(dim > 0, "ContextPool2d: dim must be positive, got ", dim);
  CTXPOOL_CHECK(options.hidden >= 0 && options.lambda >= 0, "ContextPool2d: hidden and lambda must be >= 0, got ",
                options.hidden, " and ", options.lambda);
  CTXPOOL_CHECK(!options.residual || options_.pool.stride == 1,
                "ContextPool2d: residual needs stride 1 (the output grid is the input's), got stride ",
                options_.pool.stride);
  CTXPOOL_CHECK(options.lambda == 0 || options_.pool.mode == ops::ContextPoolMode::Full,
                "ContextPool2d: lambda regularises learned support sizes and needs mode full (mode is ",
                ops::to_string(options_.pool.mode), ")");
  CTXPOOL_CHECK(options.kernel_size >= 1 && options.kernel_size % 2 == 1, "ContextPool2d: kernel_size must be odd "
                "and >= 1 (its padding k / 2 gives one prediction per position), got ", options.kernel_size);
  dim_ = dim;
  if (options_.pool.mode == ops::ContextPoolMode::Uniform) return;  // nothing to predict
  const int64_t hidden = options.hidden > 0 ? options.hidden : std::max<int64_t>(1, dim / 4);
  const int64_t k = options.kernel_size;
  Conv2dOptions same;  // k x k, padding k / 2: one prediction per position
  same.padding = {k / 2, k / 2};
  same.dtype = dtype;
  conv1 = register_module("conv1", std::make_shared<Conv2d>(dim, hidden, k, same));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(hidden, 2, k, same));
}

Tensor ContextPool2d::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 4 && x.sizes()[3] == dim_, "ContextPool2d: expected input [B, H, W, ",
                dim_, "] (channels last; forward_nchw takes [B, C, H, W]), got ",
                x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t batch = x.sizes()[0], h = x.sizes()[1], w = x.sizes()[2], stride = options_.pool.stride;
  Tensor a, b;
  if (conv1 && x.numel() > 0) {
    // [B, H, W, d] -> [B, d, H, W] -> [B, 2, H, W]; a at every pixel, b at the output centres.
    const Tensor logits = conv2->forward(ops::gelu(conv1->forward(ops::permute(x, {0, 3, 1, 2}))));
    a = ops::select(logits, 1, 0);
    b = ops::slice(ops::slice(ops::select(logits, 1, 1), 1, 0, h, stride), 2, 0, w, stride);
  } else {
    const TensorOptions opts = TensorOptions(x.dtype()).device(x.device());
    a = zeros({batch, h, w}, opts);
    b = zeros({batch, h == 0 ? 0 : (h - 1) / stride + 1, w == 0 ? 0 : (w - 1) / stride + 1}, opts);
  }
  const Tensor pooled = ops::context_pool2d(x, a, b, options_.pool);
  {
    const ops::ContextPool2dOptions& o = options_.pool;
    last_support_ = o.mode == ops::ContextPoolMode::Full
                        ? ops::add(ops::mul(ops::sigmoid(b), ops::scalar_like(*o.s_max - o.s_min, b)),
                                   ops::scalar_like(o.s_min, b))
                        : ops::add(ops::mul(b.detach(), ops::scalar_like(0.0, b)), ops::scalar_like(*o.s_fixed, b));
    if (options_.lambda == 0.0) last_support_ = last_support_.detach();
    autograd::NoGradGuard no_grad;
    last_weight_ = o.mode == ops::ContextPoolMode::Uniform ? ones_like(a) : ops::sigmoid(a.detach());
  }
  return options_.residual ? ops::add(x, pooled) : pooled;
}

Tensor ContextPool2d::forward_nchw(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 4, "ContextPool2d: forward_nchw expects [B, C, H, W], got ",
                x.defined() ? shape_str(x.sizes()) : "undefined");
  return ops::permute(forward(ops::permute(x, {0, 2, 3, 1})), {0, 3, 1, 2});
}

Tensor ContextPool2d::auxiliary_loss() const {
  if (options_.lambda == 0.0 || !last_support_.defined()) return Tensor();
  return ops::mul(ops::mean(last_support_), ops::scalar_like(options_.lambda, last_support_));
}

double ContextPool2d::mean_support() const {
  if (!last_support_.defined() || last_support_.numel() == 0) return NAN;
  autograd::NoGradGuard no_grad;
  return ops::mean(last_support_.detach()).to(kFloat64).item();
}

double ContextPool2d::mean_weight() const {
  if (!last_weight_.defined() || last_weight_.numel() == 0) return NAN;
  return ops::mean(last_weight_).to(kFloat64).item();
}

}  // namespace ctxpool::nn
