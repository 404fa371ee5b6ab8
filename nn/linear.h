// Linear: y = x W^T + b, W [out, in], b [out]. Initialised as PyTorch's: U(-1/sqrt(in), 1/sqrt(in)).
#pragma once
#include "nn/module.h"

namespace ctxpool::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = kFloat32);
  // x [..., in] -> [..., out]
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;
  int64_t in_features, out_features;
};

}  // namespace ctxpool::nn
