// LayerNorm over the last dim, with a learned scale (ones) and shift (zeros).
#pragma once
#include "nn/module.h"

namespace ctxpool::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;
  int64_t dim;
  double eps;
};

}  // namespace ctxpool::nn
