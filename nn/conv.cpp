#include "nn/conv.h"

#include <cmath>

#include "nn/init.h"
#include "ops/ops.h"

namespace ctxpool::nn {

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, int64_t left, int64_t right, int64_t dil,
               bool with_bias, DType dtype)
    : Module("Conv1d"), in_channels(in), out_channels(out), kernel_size(kernel), pad_left(left),
      pad_right(right), dilation(dil) {
  CTXPOOL_CHECK(in > 0 && out > 0 && kernel > 0, "Conv1d: sizes must be positive, got in=", in,
                " out=", out, " kernel=", kernel);
  CTXPOOL_CHECK(left >= 0 && right >= 0 && dil >= 1,
                "Conv1d: expected padding >= 0 and dilation >= 1, got pad_left=", left, " pad_right=", right,
                " dilation=", dil);
  weight = register_parameter("weight", empty({out, in, kernel}, dtype));
  // PyTorch's default: kaiming_uniform_(a=sqrt(5)) on W, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in * kernel));
  init::uniform_(weight, -bound, bound);
  if (with_bias) {
    bias = register_parameter("bias", empty({out}, dtype));
    init::uniform_(bias, -bound, bound);
  }
}

std::shared_ptr<Conv1d> Conv1d::causal(int64_t in, int64_t out, int64_t kernel, int64_t dil, bool with_bias,
                                       DType dtype) {
  return std::make_shared<Conv1d>(in, out, kernel, dil * (kernel - 1), 0, dil, with_bias, dtype);
}

Tensor Conv1d::forward(const Tensor& x) {
  // ops::conv1d checks x's shape and names the op; say which module it came from.
  CTXPOOL_CHECK(x.defined() && x.dim() == 3 && x.sizes()[1] == in_channels, "Conv1d: expected input [B, ",
                in_channels, ", L], got ", x.defined() ? shape_str(x.sizes()) : "undefined");
  return ops::conv1d(x, weight, bias, pad_left, pad_right, dilation);
}

}  // namespace ctxpool::nn
