// A small ConvNet with batch norm for image classification:
//   images [B, C, H, W] -> stages s = 0..S-1, each convs_per_stage x [3x3 conv (no bias) -> BatchNorm2d
//   -> ReLU] at width channels[s]; between stages a 2x downsampling -> global average pooling ->
//   linear head -> logits [B, num_classes].
// The downsampling is 2x2 max pooling (stride 2), or a ContextPool2d with stride 2 (downsample
// context_pool): each output position pools its (2K+1)^2 neighbourhood with learned weights and a
// learned support size, the paper's replacement for a fixed pooling window.
#pragma once
#include <memory>
#include <vector>

#include "models/image_classifier.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pool.h"
#include "nn/sequential.h"

namespace ctxpool::models {

class ConvNet : public ImageClassifier {
 public:
  explicit ConvNet(const ModelConfig& config, DType dtype = kFloat32);
  Tensor forward(const Tensor& images) override;
  double flops_per_image() const override;
  std::vector<std::shared_ptr<nn::ContextPool2d>> context_pools() const override;

  const ModelConfig& config() const { return config_; }

  std::shared_ptr<nn::Sequential> convs;       // every Conv2d, in order (a list, not chained)
  std::shared_ptr<nn::Sequential> norms;       // the BatchNorm2d after each
  std::shared_ptr<nn::Sequential> downsample;  // MaxPool2d or ContextPool2d, after stages 0..S-2
  std::shared_ptr<nn::Linear> head;

 private:
  ModelConfig config_;
};

}  // namespace ctxpool::models
