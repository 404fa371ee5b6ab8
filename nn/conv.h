// Conv1d: y = conv1d(x, W, b), W [out, in, kernel], b [out]; stride 1, zero padding given per side.
// Initialised as PyTorch's: U(-1/sqrt(in * kernel), 1/sqrt(in * kernel)) for W and b.
#pragma once
#include <memory>

#include "nn/module.h"

namespace ctxpool::nn {

class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t pad_left = 0,
         int64_t pad_right = 0, int64_t dilation = 1, bool bias = true, DType dtype = kFloat32);
  // A causal conv (pad_left = dilation * (kernel - 1), pad_right = 0): output t sees inputs <= t,
  // and L_out = L.
  static std::shared_ptr<Conv1d> causal(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                        int64_t dilation = 1, bool bias = true, DType dtype = kFloat32);
  // x [B, in, L] -> [B, out, L + pad_left + pad_right - dilation * (kernel - 1)]
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;
  int64_t in_channels, out_channels, kernel_size, pad_left, pad_right, dilation;
};

}  // namespace ctxpool::nn
