// A GPT-style causal transformer language model: token + learned position embeddings, n pre-LN
// transformer blocks, a final LayerNorm and an untied linear head.
//   idx int64 [B, T] -> logits [B, T, vocab]
#pragma once
#include <memory>

#include "models/config.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace ctxpool::models {

class TransformerLM : public nn::Module {
 public:
  explicit TransformerLM(const ModelConfig& config);
  Tensor forward(const Tensor& idx) override;

  const ModelConfig& config() const { return config_; }

  std::shared_ptr<nn::Embedding> tok_emb;
  Tensor pos_emb;  // [context, d_model]
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::LayerNorm> ln_f;
  std::shared_ptr<nn::Linear> head;

 private:
  ModelConfig config_;
};

}  // namespace ctxpool::models
