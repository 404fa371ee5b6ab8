// Pooling layers, as torch.nn's: MaxPool2d, AvgPool2d and AdaptiveAvgPool2d over x [B, C, H, W] or
// [C, H, W] (ops/pool.cpp has the output sizes and the rules for padding). No parameters.
#pragma once
#include <array>
#include <optional>

#include "nn/module.h"

namespace ctxpool::nn {

struct MaxPool2dOptions {
  std::optional<std::array<int64_t, 2>> stride;  // {height, width}; default: the kernel size
  std::array<int64_t, 2> padding = {0, 0};        // at most half the kernel size; counts as -inf
  std::array<int64_t, 2> dilation = {1, 1};
  bool ceil_mode = false;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(std::array<int64_t, 2> kernel_size, MaxPool2dOptions options = {});
  explicit MaxPool2d(int64_t kernel_size, MaxPool2dOptions options = {})  // a square window
      : MaxPool2d({kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;

  std::array<int64_t, 2> kernel_size;
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  std::optional<std::array<int64_t, 2>> stride;  // default: the kernel size
  std::array<int64_t, 2> padding = {0, 0};        // at most half the kernel size; counts as zeros
  bool ceil_mode = false;
  bool count_include_pad = true;  // false: divide by the input positions in the window only
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(std::array<int64_t, 2> kernel_size, AvgPool2dOptions options = {});
  explicit AvgPool2d(int64_t kernel_size, AvgPool2dOptions options = {})
      : AvgPool2d({kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;

  std::array<int64_t, 2> kernel_size;
  AvgPool2dOptions options;
};

// Averages windows chosen to give exactly output_size; {1, 1} is global average pooling.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(std::array<int64_t, 2> output_size);
  explicit AdaptiveAvgPool2d(int64_t output_size) : AdaptiveAvgPool2d({output_size, output_size}) {}
  Tensor forward(const Tensor& x) override;

  std::array<int64_t, 2> output_size;
};

}  // namespace ctxpool::nn
