#include "nn/pool.h"

#include "ops/ops.h"

namespace ctxpool::nn {

namespace {

// The sizes every pooling needs positive, checked when the layer is built rather than at its first forward.
void check_positive(const char* layer, const char* what, std::array<int64_t, 2> size) {
  CTXPOOL_CHECK(size[0] > 0 && size[1] > 0, layer, ": ", what, " must be positive, got [", size[0], ", ", size[1],
                "]");
}

}  // namespace

MaxPool2d::MaxPool2d(std::array<int64_t, 2> kernel, MaxPool2dOptions o)
    : Module("MaxPool2d"), kernel_size(kernel), options(o) {
  check_positive("MaxPool2d", "kernel_size", kernel_size);
  if (options.stride) check_positive("MaxPool2d", "stride", *options.stride);
  check_positive("MaxPool2d", "dilation", options.dilation);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return ops::max_pool2d(x, kernel_size, options.stride, options.padding, options.dilation, options.ceil_mode);
}

AvgPool2d::AvgPool2d(std::array<int64_t, 2> kernel, AvgPool2dOptions o)
    : Module("AvgPool2d"), kernel_size(kernel), options(o) {
  check_positive("AvgPool2d", "kernel_size", kernel_size);
  if (options.stride) check_positive("AvgPool2d", "stride", *options.stride);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  return ops::avg_pool2d(x, kernel_size, options.stride, options.padding, options.ceil_mode,
                         options.count_include_pad);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::array<int64_t, 2> size) : Module("AdaptiveAvgPool2d"), output_size(size) {
  check_positive("AdaptiveAvgPool2d", "output_size", output_size);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return ops::adaptive_avg_pool2d(x, output_size); }

}  // namespace ctxpool::nn
