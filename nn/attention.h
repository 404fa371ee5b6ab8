// Multi-head self-attention with one fused QKV projection:
//   x [B, T, d] -> qkv = x W_qkv^T [B, T, 3d] -> q, k, v [B, heads, T, d/heads]
//   -> scaled_dot_product_attention (causal for language models) -> [B, T, d] -> output projection.
#pragma once
#include <memory>

#include "nn/linear.h"

namespace ctxpool::nn {

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t dim, int64_t heads, bool causal, DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Linear> qkv, proj;
  int64_t dim, heads;
  bool causal;
};

}  // namespace ctxpool::nn
