// A small Vision Transformer (Dosovitskiy et al. 2021) for image classification:
//   images [B, C, H, W] -> PatchEmbedding (patch p) -> N = (H/p)(W/p) tokens [B, N, d], a class
//   token in front (pooling cls) -> + learned position embeddings -> n pre-LN transformer blocks
//   (bidirectional attention) -> LayerNorm -> the class token, or the mean of the patch tokens
//   (pooling mean) -> linear head -> logits [B, num_classes].
// ContextPool2d (../shared/PAPER.md, 2-D) pools the (H/p) x (W/p) patch grid, as for sequences:
// as each block's attention input (placement attn_input; pooled kv or qkv) or between blocks on the
// residual stream (placement between). The class token is never pooled; it passes through as is.
#pragma once
#include <memory>
#include <vector>

#include "models/image_classifier.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/patch_embedding.h"
#include "nn/sequential.h"
#include "nn/transformer.h"

namespace ctxpool::models {

class VisionTransformer : public ImageClassifier {
 public:
  explicit VisionTransformer(const ModelConfig& config, DType dtype = kFloat32);
  Tensor forward(const Tensor& images) override;
  double flops_per_image() const override;
  std::vector<std::shared_ptr<nn::ContextPool2d>> context_pools() const override;

  const ModelConfig& config() const { return config_; }
  int64_t grid() const { return grid_; }  // the patch grid is grid x grid

  std::shared_ptr<nn::PatchEmbedding> patch_embed;
  Tensor cls_token;  // [1, 1, d] (pooling cls)
  Tensor pos_emb;    // [1, tokens, d]
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::Sequential> pools;  // attn_input: pools[l] feeds block l; between: follows block l
  std::shared_ptr<nn::LayerNorm> ln_f;
  std::shared_ptr<nn::Linear> head;

 private:
  // tokens [B, T, d] -> the same with the patch tokens replaced by pool(grid of them).
  Tensor pool_patches(nn::ContextPool2d& pool, const Tensor& tokens) const;

  ModelConfig config_;
  int64_t grid_ = 0;
  bool cls_ = true;
};

}  // namespace ctxpool::models
