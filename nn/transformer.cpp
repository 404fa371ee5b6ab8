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
  CTXPOOL_CHECK(!(o.context_pool && o.external_pool), "TransformerBlock: context_pool and external_pool exclude "
                "each other (the block owns its pool, or the caller passes one)");
  ao.split_qkv = (o.context_pool || o.external_pool) && o.pool_kv_only;
  attn = register_module("attn", std::make_shared<MultiheadAttention>(ao, dtype));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps, true, dtype));
  mlp = register_module("mlp", std::make_shared<MLP>(o.dim, o.mlp_hidden, o.gelu_approximate, dtype));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  CTXPOOL_CHECK(!options.external_pool, "TransformerBlock: built with external_pool, so forward needs the pool: "
                "forward(x, pool)");
  if (!pool) return finish(x, attn->forward(ln1->forward(x)));
  return forward_pooled(x, [this](const Tensor& normed) { return pool->forward(normed); });
}

Tensor TransformerBlock::forward(const Tensor& x, const std::function<Tensor(const Tensor&)>& external) {
  CTXPOOL_CHECK(options.external_pool, "TransformerBlock: forward(x, pool) needs options.external_pool");
  return forward_pooled(x, external);
}

Tensor TransformerBlock::forward_pooled(const Tensor& x, const std::function<Tensor(const Tensor&)>& pool_fn) {
  const Tensor normed = ln1->forward(x);
  const Tensor pooled = pool_fn(normed);
  return finish(x, options.pool_kv_only ? attn->forward(normed, pooled) : attn->forward(pooled));
}

// The residual around attention, then the MLP's.
Tensor TransformerBlock::finish(const Tensor& x, const Tensor& attended) {
  Tensor h = ops::add(x, drop->forward(attended));
  return ops::add(h, drop->forward(mlp->forward(ln2->forward(h))));
}

}  // namespace ctxpool::nn
