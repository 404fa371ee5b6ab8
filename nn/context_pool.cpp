#include "nn/context_pool.h"

#include <cmath>

#include "autograd/grad_mode.h"

namespace ctxpool::nn {

ContextPool1d::ContextPool1d(int64_t dim, const ContextPool1dOptions& options, DType dtype)
    : Module("ContextPool1d"), options_(options) {
  options_.pool = options.pool.resolved();  // errors for bad options now, not at the first forward
  CTXPOOL_CHECK(dim > 0, "ContextPool1d: dim must be positive, got ", dim);
  CTXPOOL_CHECK(options.kernel_size >= 1, "ContextPool1d: kernel_size must be >= 1, got ", options.kernel_size);
  CTXPOOL_CHECK(options.hidden >= 0 && options.lambda >= 0, "ContextPool1d: hidden and lambda must be >= 0, got ",
                options.hidden, " and ", options.lambda);
  CTXPOOL_CHECK(options.lambda == 0 || options_.pool.mode == ops::ContextPoolMode::Full,
                "ContextPool1d: lambda regularises learned support sizes and needs mode full (mode is ",
                ops::to_string(options_.pool.mode), ")");
  dim_ = dim;
  if (options_.pool.mode == ops::ContextPoolMode::Uniform) return;  // nothing to predict: no predictor
  const int64_t hidden = options.hidden > 0 ? options.hidden : std::max<int64_t>(1, dim / 4);
  const int64_t k = options.kernel_size;
  // Causal: left padding only, so token i's prediction never reads j > i (two stacked convolutions
  // see i - 2(k-1)..i). Otherwise centred padding.
  const int64_t left = options_.pool.causal ? k - 1 : (k - 1) / 2, right = k - 1 - left;
  conv1 = register_module("conv1", std::make_shared<Conv1d>(dim, hidden, k, left, right, 1, true, dtype));
  conv2 = register_module("conv2", std::make_shared<Conv1d>(hidden, 2, k, left, right, 1, true, dtype));
}

Tensor ContextPool1d::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 3 && x.sizes()[2] == dim_, "ContextPool1d: expected input [B, N, ", dim_,
                "], got ", x.defined() ? shape_str(x.sizes()) : "undefined");
  Tensor a, b;
  if (conv1 && x.sizes()[1] > 0) {
    // Predictor over the sequence: [B, N, d] -> [B, d, N] -> [B, 2, N] -> a, b [B, N].
    const Tensor logits = conv2->forward(ops::gelu(conv1->forward(ops::transpose(x, 1, 2))));
    a = ops::select(logits, 1, 0);
    b = ops::select(logits, 1, 1);
  } else {
    // uniform mode (a and b unused), or an empty sequence (nothing to predict)
    a = b = zeros({x.sizes()[0], x.sizes()[1]}, TensorOptions(x.dtype()).device(x.device()));
  }
  const Tensor pooled = ops::context_pool1d(x, a, b, options_.pool);

  last_support_ = ops::context_pool1d_support(b, options_.pool);
  if (options_.lambda == 0.0) last_support_ = last_support_.detach();
  {
    autograd::NoGradGuard no_grad;
    last_weight_ = options_.pool.mode == ops::ContextPoolMode::Uniform ? ones_like(a) : ops::sigmoid(a.detach());
  }
  return options_.residual ? ops::add(x, pooled) : pooled;
}

Tensor ContextPool1d::auxiliary_loss() const {
  if (options_.lambda == 0.0 || !last_support_.defined()) return Tensor();
  return ops::mul(ops::mean(last_support_), ops::scalar_like(options_.lambda, last_support_));
}

double ContextPool1d::mean_support() const {
  if (!last_support_.defined()) return NAN;
  autograd::NoGradGuard no_grad;
  return ops::mean(last_support_.detach()).to(kFloat64).item();
}

double ContextPool1d::mean_weight() const {
  if (!last_weight_.defined()) return NAN;
  return ops::mean(last_weight_).to(kFloat64).item();
}

}  // namespace ctxpool::nn
