// The pieces of a transformer: the GELU MLP and the pre-LayerNorm block
//   x = x + attn(ln1(x)); x = x + mlp(ln2(x)).
// With a ContextPool as attention input (placement attn_input, ../shared/PAPER.md), attention reads
// the pooled features p = pool(ln1(x)): attn(p) (pooled: qkv), or queries from ln1(x) and keys and
// values from p (pooled: kv). The residual stream itself is never pooled here.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "nn/attention.h"
#include "nn/context_pool.h"
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
  AttentionKind attention = AttentionKind::Full;
  int64_t local_window = 32;             // attention = local
  AdaptiveSpanOptions span = {};         // attention = adaptive_span
  bool context_pool = false;             // attention reads ContextPool(ln1(x))
  ContextPool1dOptions pool = {};        // its options (pool.pool.causal follows `causal`)
  bool pool_kv_only = false;             // pooled: kv (queries read ln1(x)) rather than qkv
  bool external_pool = false;            // attention reads a pool the caller owns: forward(x, pool)
};

class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(const TransformerBlockOptions& options, DType dtype = kFloat32);
  const TransformerBlockOptions options;
  // x [B, T, d] -> [B, T, d]
  Tensor forward(const Tensor& x) override;
  // With options.external_pool: attention reads pool(ln1(x)) (all of q, k, v, or k and v with
  // pool_kv_only), for a pool that needs more than the sequence, such as a ViT's ContextPool2d over
  // its patch grid. `pool` maps [B, T, d] to [B, T, d].
  Tensor forward(const Tensor& x, const std::function<Tensor(const Tensor&)>& pool);

  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<ContextPool1d> pool;  // attention-input ContextPool, or null
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<Dropout> drop;

 private:
  Tensor forward_pooled(const Tensor& x, const std::function<Tensor(const Tensor&)>& pool_fn);
  Tensor finish(const Tensor& x, const Tensor& attended);
};

}  // namespace ctxpool::nn
