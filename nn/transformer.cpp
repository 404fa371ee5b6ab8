#include "nn/transformer.h"

#include "ops/ops.h"

namespace ctxpool::nn {

MLP::MLP(int64_t dim, int64_t hidden, const std::string& approximate, DType dtype)
    : Module("MLP"), gelu_approximate(approximate) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, true, dtype));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, true, dtype));
}

Tensor MLP::forward(const Tensor& x) { return fc2->forward(ops::gelu(fc1->forward(x), gelu_approximate)); }

TransformerBlock::TransformerBlock(const TransformerBlockOptions& o, DType dtype)
    : Module("TransformerBlock"), options(o) {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps, true, dtype));
  if (o.context_pool) {
    ContextPool1dOptions po = o.pool;
    po.pool.causal = o.causal;
    pool = register_module("pool", std::make_shared<ContextPool1d>(o.dim, po, dtype));
  }
  AttentionOptions ao;
  ao.dim = o.dim;
  ao.heads = o.heads;
  ao.causal = o.causal;
  ao.kind = o.attention;
  ao.local_window = o.local_window;
  ao.span = o.span;
  ao.split_qkv = o.context_pool && o.pool_kv_only;
  attn = register_module("attn", std::make_shared<MultiheadAttention>(ao, dtype));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps, true, dtype));
  mlp = register_module("mlp", std::make_shared<MLP>(o.dim, o.mlp_hidden, o.gelu_approximate, dtype));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  const Tensor normed = ln1->forward(x);
  Tensor a;
  if (!pool) {
    a = attn->forward(normed);
  } else {
    const Tensor pooled = pool->forward(normed);
    a = options.pool_kv_only ? attn->forward(normed, pooled) : attn->forward(pooled);
  }
  Tensor h = ops::add(x, drop->forward(a));
  return ops::add(h, drop->forward(mlp->forward(ln2->forward(h))));
}

}  // namespace ctxpool::nn
