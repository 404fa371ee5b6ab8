// ContextPool2d: adaptive context pooling on an image or token grid (../shared/PAPER.md, "2-D").
// A predictor (two kernel_size x kernel_size convolutions, 3x3 by default, GELU between) reads the features and gives each position a
// pooling-weight logit a and a support-size logit b; ops::context_pool2d then pools each output
// position's (2K+1)^2 neighbourhood. With stride > 1 it downsamples, replacing a ConvNet's pooling layer.
//   forward:      x [B, H, W, d] (channels last: a ViT's tokens as a grid) -> [B, Ho, Wo, d]
//   forward_nchw: x [B, d, H, W] (a ConvNet's feature map)                  -> [B, d, Ho, Wo]
#pragma once
#include <memory>

#include "nn/conv2d.h"
#include "ops/ops.h"

namespace ctxpool::nn {

struct ContextPool2dOptions {
  ops::ContextPool2dOptions pool;  // window K, stride, s_min, s_max, eps, mode, s_fixed
  int64_t hidden = 0;              // predictor width; 0: max(1, d / 4)
  int64_t kernel_size = 3;         // of both predictor convolutions; odd, so padding k / 2 keeps the grid
  bool residual = false;           // out = x + pooled (stride 1 only)
  double lambda = 0.0;             // support regulariser lambda * mean(s) (mode full)
};

class ContextPool2d : public Module {
 public:
  ContextPool2d(int64_t dim, const ContextPool2dOptions& options = {}, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;  // channels last
  Tensor forward_nchw(const Tensor& x);

  // As ContextPool1d's: lambda * mean(s) of the last forward; means of s (pixels) and w for logging.
  Tensor auxiliary_loss() const;
  double mean_support() const;
  double mean_weight() const;
  const ContextPool2dOptions& options() const { return options_; }

  std::shared_ptr<Conv2d> conv1, conv2;  // the predictor (none in uniform mode)

 private:
  int64_t dim_ = 0;
  ContextPool2dOptions options_;
  Tensor last_support_, last_weight_;
};

}  // namespace ctxpool::nn
