#include "nn/conv2d.h"

#include <cmath>
#include <sstream>

#include "nn/init.h"
#include "ops/ops.h"

namespace ctxpool::nn {

namespace {

Shape shape_of(std::array<int64_t, 2> s) { return {s[0], s[1]}; }

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, std::array<int64_t, 2> kernel, Conv2dOptions o)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(kernel), options(o) {
  CTXPOOL_CHECK(in > 0 && out > 0 && kernel[0] > 0 && kernel[1] > 0, "Conv2d: sizes must be positive, got in=", in,
                " out=", out, " kernel_size=", shape_of(kernel));
  CTXPOOL_CHECK(o.groups >= 1 && in % o.groups == 0 && out % o.groups == 0, "Conv2d: groups=", o.groups,
                " must be >= 1 and divide in=", in, " and out=", out);
  CTXPOOL_CHECK(o.stride[0] > 0 && o.stride[1] > 0 && o.dilation[0] > 0 && o.dilation[1] > 0 && o.padding[0] >= 0 &&
                    o.padding[1] >= 0,
                "Conv2d: expected stride > 0, dilation > 0 and padding >= 0, got stride=", shape_of(o.stride),
                " dilation=", shape_of(o.dilation), " padding=", shape_of(o.padding));
  weight = register_parameter("weight", empty({out, in / o.groups, kernel[0], kernel[1]}, o.dtype));
  // PyTorch's default: kaiming_uniform_(a=sqrt(5)) on W, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in / o.groups * kernel[0] * kernel[1]));
  init::uniform_(weight, -bound, bound);
  if (o.bias) {
    bias = register_parameter("bias", empty({out}, o.dtype));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  // ops::conv2d checks x's shape and names the op; say which module it came from.
  CTXPOOL_CHECK(x.defined() && x.dim() == 4 && x.sizes()[1] == in_channels, "Conv2d: expected input [B, ",
                in_channels, ", H, W], got ", x.defined() ? shape_str(x.sizes()) : "undefined");
  return ops::conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

std::string Conv2d::describe() const {
  std::ostringstream os;
  os << "Conv2d(" << in_channels << ", " << out_channels << ", kernel_size=" << shape_str(shape_of(kernel_size));
  if (options.stride != std::array<int64_t, 2>{1, 1}) os << ", stride=" << shape_str(shape_of(options.stride));
  if (options.padding != std::array<int64_t, 2>{0, 0}) os << ", padding=" << shape_str(shape_of(options.padding));
  if (options.dilation != std::array<int64_t, 2>{1, 1}) os << ", dilation=" << shape_str(shape_of(options.dilation));
  if (options.groups != 1) os << ", groups=" << options.groups;
  if (!options.bias) os << ", bias=false";
  if (options.dtype != kFloat32) os << ", dtype=" << dtype_name(options.dtype);
  os << ")";
  return os.str();
}

}  // namespace ctxpool::nn
