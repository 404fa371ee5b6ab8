// Image classifiers: the interface the image trainer needs, the factory that builds one from a
// config (model.type "vit" or "convnet"), and what the two share: their ContextPool2d layers.
//   images float [B, C, H, W] -> logits [B, num_classes]
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/config.h"
#include "nn/context_pool2d.h"
#include "nn/module.h"

namespace ctxpool::models {

class ImageClassifier : public nn::Module {
 public:
  using nn::Module::Module;
  Tensor forward(const Tensor& images) override = 0;

  // Forward FLOPs per image (multiply-adds count 2), from the layer shapes; each model's
  // flops_per_image() says what it counts.
  virtual double flops_per_image() const = 0;
  // Every ContextPool2d layer, in depth order (the l of cp_support/<l>).
  virtual std::vector<std::shared_ptr<nn::ContextPool2d>> context_pools() const = 0;

  // The ContextPool support regularisers of the last forward (undefined when there are none).
  Tensor auxiliary_loss() const;
  // "cp_support/<l>" (mean support size, in grid positions) and "cp_weight/<l>" of the last forward.
  std::vector<std::pair<std::string, double>> diagnostics() const;
};

// A ViT or ConvNet as the config describes; its image sizes (in_channels, image_size, num_classes)
// must be set (the trainer fills them in from the dataset).
std::shared_ptr<ImageClassifier> make_image_classifier(const ModelConfig& config, DType dtype = kFloat32);

// The nn options of a ContextPool2d described by the config, with the given stride.
nn::ContextPool2dOptions context_pool2d_options(const ContextPoolConfig& c, int64_t stride);

// Forward FLOPs of one ContextPool2d on an h x w grid of d features: the predictor's two 3x3
// convolutions at every position (none in uniform mode) and the pooling, 2 d per window position
// inside the grid, summed over the output positions.
double context_pool2d_flops(const nn::ContextPool2d& pool, int64_t d, int64_t h, int64_t w);

}  // namespace ctxpool::models
