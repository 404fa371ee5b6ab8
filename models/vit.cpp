#include "models/vit.h"

#include "models/transformer_lm.h"
#include "ops/ops.h"

namespace ctxpool::models {

VisionTransformer::VisionTransformer(const ModelConfig& c, DType dtype)
    : ImageClassifier("VisionTransformer"), config_(c) {
  const ImageModelConfig& im = c.image;
  CTXPOOL_CHECK(c.type == "vit", "VisionTransformer: model.type must be \"vit\", got \"", c.type, "\"");
  c.validate();
  CTXPOOL_CHECK(im.image_size > 0 && im.image_size % im.patch_size == 0, "VisionTransformer: image_size ",
                im.image_size, " must be a positive multiple of patch_size ", im.patch_size);
  grid_ = im.image_size / im.patch_size;
  cls_ = im.pooling == "cls";
  const int64_t tokens = grid_ * grid_ + (cls_ ? 1 : 0);
  const ContextPoolConfig& cp = c.context_pool;

  patch_embed = register_module("patch_embed", std::make_shared<nn::PatchEmbedding>(im.in_channels, c.d_model,
                                                                                    im.patch_size, dtype));
  if (cls_) cls_token = register_parameter("cls_token", empty({1, 1, c.d_model}, dtype));
  pos_emb = register_parameter("pos_emb", empty({1, tokens, c.d_model}, dtype));
  nn::TransformerBlockOptions block;
  block.dim = c.d_model;
  block.heads = c.n_heads;
  block.mlp_hidden = c.d_mlp;
  block.causal = false;
  block.dropout = c.dropout;
  block.gelu_approximate = c.gelu;
  block.external_pool = cp.enabled && cp.placement == "attn_input";
  block.pool_kv_only = cp.pooled == "kv";
  blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  for (int64_t i = 0; i < c.n_layers; ++i) blocks->push_back(std::make_shared<nn::TransformerBlock>(block, dtype));
  if (cp.enabled) {
    // attn_input: one per block; between: after every block that feeds another.
    const int64_t count = cp.placement == "attn_input" ? c.n_layers : std::max<int64_t>(0, c.n_layers - 1);
    pools = register_module("pools", std::make_shared<nn::Sequential>());
    for (int64_t i = 0; i < count; ++i)
      pools->push_back(std::make_shared<nn::ContextPool2d>(c.d_model, context_pool2d_options(cp, 1), dtype));
  }
  ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.d_model, 1e-5, true, dtype));
  head = register_module("head", std::make_shared<nn::Linear>(c.d_model, im.num_classes, true, dtype));

  // As the language model: matrices, embeddings and convolution kernels N(0, init_std), biases zero,
  // LayerNorm (1, 0); so ContextPool predictors start near w = 1/2 and a middle support size.
  init_transformer_weights(*this, c.init_std);
}

Tensor VisionTransformer::pool_patches(nn::ContextPool2d& pool, const Tensor& tokens) const {
  const int64_t b = tokens.sizes()[0], t = tokens.sizes()[1], d = tokens.sizes()[2], first = cls_ ? 1 : 0;
  const Tensor patches = ops::reshape(ops::slice(tokens, 1, first, t), {b, grid_, grid_, d});
  const Tensor pooled = ops::reshape(pool.forward(patches), {b, grid_ * grid_, d});
  return cls_ ? ops::cat({ops::slice(tokens, 1, 0, 1), pooled}, 1) : pooled;
}

Tensor VisionTransformer::forward(const Tensor& images) {
  const ImageModelConfig& im = config_.image;
  CTXPOOL_CHECK(images.defined() && images.dim() == 4 && images.sizes()[1] == im.in_channels &&
                    images.sizes()[2] == im.image_size && images.sizes()[3] == im.image_size,
                "VisionTransformer: expected images [B, ", im.in_channels, ", ", im.image_size, ", ", im.image_size,
                "], got ", images.defined() ? shape_str(images.sizes()) : "undefined");
  const int64_t b = images.sizes()[0], d = config_.d_model;
  Tensor x = ops::reshape(patch_embed->forward(images), {b, grid_ * grid_, d});
  if (cls_) x = ops::cat({ops::expand(cls_token, {b, 1, d}), x}, 1);
  x = ops::add(x, pos_emb);
  const bool attn_input = pools && config_.context_pool.placement == "attn_input";
  for (size_t l = 0; l < blocks->size(); ++l) {
    auto& block = static_cast<nn::TransformerBlock&>(*(*blocks)[l]);
    if (attn_input) {
      auto& pool = static_cast<nn::ContextPool2d&>(*(*pools)[l]);
      x = block.forward(x, [&](const Tensor& normed) { return pool_patches(pool, normed); });
    } else {
      x = block.forward(x);
      if (pools && l < pools->size()) x = pool_patches(static_cast<nn::ContextPool2d&>(*(*pools)[l]), x);
    }
  }
  x = ln_f->forward(x);
  const Tensor features = cls_ ? ops::select(x, 1, 0) : ops::mean(x, {1});
  return head->forward(features);
}

std::vector<std::shared_ptr<nn::ContextPool2d>> VisionTransformer::context_pools() const {
  std::vector<std::shared_ptr<nn::ContextPool2d>> out;
  if (!pools) return out;
  for (size_t l = 0; l < pools->size(); ++l) out.push_back(std::static_pointer_cast<nn::ContextPool2d>((*pools)[l]));
  return out;
}

// Counted: every matrix product as executed (2 FLOPs per multiply-add): the patch embedding
// 2 C p^2 d per patch; per block, over its T tokens, projections 8 d^2 and MLP 4 d d_mlp per token,
// and attention 4 d T per token (scores and weighted values, all T keys: bidirectional); each
// ContextPool2d (context_pool2d_flops); the head 2 d classes. Not counted: LayerNorm, softmax, GELU,
// biases, position embeddings and residual adds.
double VisionTransformer::flops_per_image() const {
  const ModelConfig& c = config_;
  const double d = static_cast<double>(c.d_model), patches = static_cast<double>(grid_ * grid_);
  const double t = patches + (cls_ ? 1.0 : 0.0), p = static_cast<double>(c.image.patch_size);
  double total = 2.0 * static_cast<double>(c.image.in_channels) * p * p * d * patches;
  total += static_cast<double>(c.n_layers) * t * (8 * d * d + 4 * d * static_cast<double>(c.d_mlp) + 4 * d * t);
  for (const auto& pool : context_pools()) total += context_pool2d_flops(*pool, c.d_model, grid_, grid_);
  return total + 2.0 * d * static_cast<double>(c.image.num_classes);
}

}  // namespace ctxpool::models
