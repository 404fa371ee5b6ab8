#include "nn/transformer.h"

#include "ops/ops.h"

namespace ctxpool::nn {

MLP::MLP(int64_t dim, int64_t hidden, const std::string& approximate, DType dtype)
    : Module("MLP"), gelu_approximate(approximate) {
  fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, true, dtype));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, true, dtype));
}

Tensor MLP::forward(const Tensor& x) { return fc2->forward(ops::gelu(fc1->forward(x), gelu_approximate)); }

TransformerBlock::TransformerBlock(const TransformerBlockOptions& o, DType dtype) : Module("TransformerBlock") {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps, true, dtype));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(o.dim, o.heads, o.causal, dtype));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps, true, dtype));
  mlp = register_module("mlp", std::make_shared<MLP>(o.dim, o.mlp_hidden, o.gelu_approximate, dtype));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  Tensor h = ops::add(x, drop->forward(attn->forward(ln1->forward(x))));
  return ops::add(h, drop->forward(mlp->forward(ln2->forward(h))));
}

}  // namespace ctxpool::nn
