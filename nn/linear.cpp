#include "nn/linear.h"

#include <cmath>

#include "nn/init.h"
#include "ops/ops.h"

namespace ctxpool::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dtype)
    : Module("Linear"), in_features(in), out_features(out) {
  CTXPOOL_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in=", in, " out=", out);
  weight = register_parameter("weight", empty({out, in}, dtype));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  init::uniform_(weight, -bound, bound);
  if (with_bias) {
    bias = register_parameter("bias", empty({out}, dtype));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() >= 1 && x.sizes().back() == in_features, "Linear: input of shape ",
                x.defined() ? shape_str(x.sizes()) : "undefined", " does not end with in_features ",
                in_features);
  // One 2-D gemm over all leading dims (not a batch of small ones).
  Shape out_sizes = x.sizes();
  out_sizes.back() = out_features;
  Tensor y = ops::matmul(x.reshape({-1, in_features}), weight.t());
  if (bias.defined()) y = ops::add(y, bias);
  return y.reshape(out_sizes);
}

}  // namespace ctxpool::nn
