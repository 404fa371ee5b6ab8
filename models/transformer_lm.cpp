#include "models/transformer_lm.h"

#include "nn/init.h"
#include "nn/transformer.h"
#include "ops/ops.h"

namespace ctxpool::models {

TransformerLM::TransformerLM(const ModelConfig& c) : nn::Module("TransformerLM"), config_(c) {
  CTXPOOL_CHECK(c.vocab_size > 0, "TransformerLM: vocab_size must be positive, got ", c.vocab_size);
  tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(c.vocab_size, c.d_model));
  pos_emb = register_parameter("pos_emb", empty({c.context, c.d_model}));
  nn::TransformerBlockOptions block;
  block.dim = c.d_model;
  block.heads = c.n_heads;
  block.mlp_hidden = c.d_mlp;
  block.causal = true;
  block.dropout = c.dropout;
  block.gelu_approximate = c.gelu;
  blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < c.n_layers; ++i) blocks->push_back(std::make_shared<nn::TransformerBlock>(block));
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.d_model));
  head = register_module("head", std::make_shared<nn::Linear>(c.d_model, c.vocab_size));

  // GPT-2 style: every matrix and embedding N(0, init_std), biases zero, LayerNorm (1, 0).
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() >= 2) {
      nn::init::normal_(p, 0.0, c.init_std);
    } else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      nn::init::zeros_(p);
    }
  }
}

Tensor TransformerLM::forward(const Tensor& idx) {
  CTXPOOL_CHECK(idx.defined() && idx.dim() == 2 && idx.dtype() == kInt64, "TransformerLM: expected int64 token ids "
                "[B, T], got ", idx.defined() ? shape_str(idx.sizes()) : "undefined");
  const int64_t t = idx.sizes()[1];
  CTXPOOL_CHECK(t >= 1 && t <= config_.context, "TransformerLM: sequence length ", t, " exceeds the context ",
                config_.context);
  Tensor x = ops::add(tok_emb->forward(idx), pos_emb.narrow(0, 0, t));
  x = blocks->forward(x);
  return head->forward(ln_f->forward(x));
}

}  // namespace ctxpool::models
