// The pieces of a transformer: the GELU MLP and the pre-LayerNorm block
//   x = x + attn(ln1(x)); x = x + mlp(ln2(x)).
#pragma once
#include <memory>
#include <string>

#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

namespace ctxpool::nn {

// x [..., d] -> fc2(gelu(fc1(x))) [..., d], hidden width `hidden`.
class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, const std::string& gelu_approximate = "none", DType dtype = kFloat32);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Linear> fc1, fc2;
  std::string gelu_approximate;
};

struct TransformerBlockOptions {
  int64_t dim = 128;
  int64_t heads = 4;
  int64_t mlp_hidden = 512;
  bool causal = true;
  double dropout = 0.0;  // on the attention and MLP outputs (residual dropout)
  std::string gelu_approximate = "none";
  double layer_norm_eps = 1e-5;
};

class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(const TransformerBlockOptions& options, DType dtype = kFloat32);
  // x [B, T, d] -> [B, T, d]
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<Dropout> drop;
};

}  // namespace ctxpool::nn
