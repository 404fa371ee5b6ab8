// PatchEmbedding: a ViT's tokeniser. A conv2d with kernel = stride = patch cuts the image into
// non-overlapping patch x patch squares and projects each to d features.
//   x [B, C, H, W] -> tokens [B, H/p, W/p, d] (a channels-last grid: ContextPool2d reads it as is;
//   reshape to [B, N, d] for attention). H and W must be multiples of the patch size.
#pragma once
#include <memory>

#include "nn/conv2d.h"

namespace ctxpool::nn {

class PatchEmbedding : public Module {
 public:
  PatchEmbedding(int64_t in_channels, int64_t dim, int64_t patch, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> proj;
  int64_t patch;
};

}  // namespace ctxpool::nn
