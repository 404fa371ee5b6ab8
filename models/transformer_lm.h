// A GPT-style causal transformer language model: token + learned position embeddings, n pre-LN
// transformer blocks, a final LayerNorm and an untied linear head.
//   idx int64 [B, T] -> logits [B, T, vocab]
// Variants, from the config: the attention kind (full, local window, adaptive span) and adaptive
// context pooling (ContextPool), either as each block's attention input (placement attn_input) or
// between blocks, on the residual stream that feeds the next block (placement between).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/config.h"
#include "nn/context_pool.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "nn/transformer.h"

namespace ctxpool::models {

class TransformerLM : public nn::Module {
 public:
  // In the config's model.dtype, or in `dtype` (e.g. float64 for gradient checks of a float32 config).
  explicit TransformerLM(const ModelConfig& config);
  TransformerLM(const ModelConfig& config, DType dtype);
  Tensor forward(const Tensor& idx) override;

  const ModelConfig& config() const { return config_; }

  // The regularisers of the last forward, to add to the training loss: each ContextPool's
  // lambda * mean(s) and each adaptive-span layer's lambda * S * mean(z). Undefined when there are none.
  Tensor auxiliary_loss() const;
  // To call after every optimizer step: clamps the adaptive spans' z to [0, 1].
  void after_optimizer_step();
  // Values to log (docs/contextpool.md): "cp_support/<l>" and "cp_weight/<l>", the mean support size
  // (tokens) and mean weight of ContextPool layer l in the last forward; "span/<l>", the mean
  // adaptive span (tokens) of block l.
  std::vector<std::pair<std::string, double>> diagnostics() const;
  // Forward FLOPs per token at the full context (multiply-adds count 2), from the layer shapes; see
  // flops_per_token() in transformer_lm.cpp for what is counted.
  double flops_per_token() const;

  // Block l of `blocks`, typed.
  std::shared_ptr<nn::TransformerBlock> block(size_t l) const;
  // Every ContextPool layer, in depth order (the l of cp_support/<l>).
  std::vector<std::shared_ptr<nn::ContextPool1d>> context_pools() const;

  std::shared_ptr<nn::Embedding> tok_emb;
  Tensor pos_emb;  // [context, d_model]
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::Sequential> pools;  // placement between: pools[l] follows block l (l < n_layers - 1)
  std::shared_ptr<nn::LayerNorm> ln_f;
  std::shared_ptr<nn::Linear> head;

 private:
  ModelConfig config_;
};

// GPT-2 style initialisation, shared by the language model and the ViT: every parameter with
// dim >= 2 (matrices, embeddings, convolution kernels) N(0, init_std), biases zero, the rest
// (LayerNorm scales, adaptive spans) as constructed. In named_parameters() order.
void init_transformer_weights(nn::Module& model, double init_std);

// The nn options of one ContextPool layer described by the config.
nn::ContextPool1dOptions context_pool_options(const ContextPoolConfig& c);

}  // namespace ctxpool::models
