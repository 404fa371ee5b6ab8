// Conv2d: y = conv2d(x, W, b), W [out, in / groups, kh, kw], b [out] (optional), with stride,
// zero padding, dilation and groups as torch.nn.Conv2d. Initialised as PyTorch's default:
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b, fan_in = in / groups * kh * kw.
#pragma once
#include <array>
#include <string>

#include "nn/module.h"

namespace ctxpool::nn {

struct Conv2dOptions {
  std::array<int64_t, 2> stride = {1, 1};    // {height, width}, as every size here
  std::array<int64_t, 2> padding = {0, 0};
  std::array<int64_t, 2> dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
  DType dtype = kFloat32;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int64_t, 2> kernel_size, Conv2dOptions options = {});
  // A square kernel.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {})
      : Conv2d(in_channels, out_channels, {kernel_size, kernel_size}, options) {}
  // x [B, in, H, W] -> [B, out, H_out, W_out], H_out = (H + 2 pad - dilation (kh - 1) - 1) / stride + 1.
  Tensor forward(const Tensor& x) override;
  // One line in PyTorch's style: "Conv2d(3, 16, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1])";
  // options at their defaults are left out.
  std::string describe() const;

  Tensor weight, bias;
  int64_t in_channels, out_channels;
  std::array<int64_t, 2> kernel_size;
  Conv2dOptions options;
};

}  // namespace ctxpool::nn
