#include "models/convnet.h"

#include "ops/ops.h"

namespace ctxpool::models {

ConvNet::ConvNet(const ModelConfig& c, DType dtype) : ImageClassifier("ConvNet"), config_(c) {
  CTXPOOL_CHECK(c.type == "convnet", "ConvNet: model.type must be \"convnet\", got \"", c.type, "\"");
  c.validate();
  const ImageModelConfig& im = c.image;
  convs = register_module("convs", std::make_shared<nn::Sequential>());
  norms = register_module("norms", std::make_shared<nn::Sequential>());
  downsample = register_module("downsample", std::make_shared<nn::Sequential>());
  nn::Conv2dOptions same;  // 3x3, padding 1, no bias (the batch norm that follows has one)
  same.padding = {1, 1};
  same.bias = false;
  same.dtype = dtype;
  nn::BatchNormOptions bn;
  bn.dtype = dtype;
  int64_t in = im.in_channels;
  for (size_t s = 0; s < im.channels.size(); ++s) {
    const int64_t width = im.channels[s];
    for (int64_t i = 0; i < im.convs_per_stage; ++i) {
      convs->push_back(std::make_shared<nn::Conv2d>(in, width, 3, same));
      norms->push_back(std::make_shared<nn::BatchNorm2d>(width, bn));
      in = width;
    }
    if (s + 1 == im.channels.size()) break;
    if (im.downsample == "max_pool") {
      downsample->push_back(std::make_shared<nn::MaxPool2d>(2));
    } else {
      downsample->push_back(std::make_shared<nn::ContextPool2d>(width, context_pool2d_options(c.context_pool, 2), dtype));
    }
  }
  head = register_module("head", std::make_shared<nn::Linear>(in, im.num_classes, true, dtype));
}

Tensor ConvNet::forward(const Tensor& images) {
  const ImageModelConfig& im = config_.image;
  CTXPOOL_CHECK(images.defined() && images.dim() == 4 && images.sizes()[1] == im.in_channels,
                "ConvNet: expected images [B, ", im.in_channels, ", H, W], got ",
                images.defined() ? shape_str(images.sizes()) : "undefined");
  Tensor x = images;
  size_t layer = 0;
  for (size_t s = 0; s < im.channels.size(); ++s) {
    for (int64_t i = 0; i < im.convs_per_stage; ++i, ++layer)
      x = ops::relu((*norms)[layer]->forward((*convs)[layer]->forward(x)));
    if (s < downsample->size()) {
      if (auto pool = std::dynamic_pointer_cast<nn::ContextPool2d>((*downsample)[s])) {
        x = pool->forward_nchw(x);
      } else {
        x = (*downsample)[s]->forward(x);
      }
    }
  }
  return head->forward(ops::mean(x, {2, 3}));  // global average pooling
}

std::vector<std::shared_ptr<nn::ContextPool2d>> ConvNet::context_pools() const {
  std::vector<std::shared_ptr<nn::ContextPool2d>> out;
  for (size_t s = 0; s < downsample->size(); ++s)
    if (auto pool = std::dynamic_pointer_cast<nn::ContextPool2d>((*downsample)[s])) out.push_back(pool);
  return out;
}

// Counted at the configured image size: every convolution 2 k^2 C_in C_out per output pixel, each
// downsampling ContextPool2d (context_pool2d_flops), the head 2 C classes. Not counted: batch norm,
// ReLU, max pooling and the global average (all linear in the activations).
double ConvNet::flops_per_image() const {
  const ImageModelConfig& im = config_.image;
  double total = 0;
  int64_t h = im.image_size, w = im.image_size, in = im.in_channels;
  for (size_t s = 0; s < im.channels.size(); ++s) {
    for (int64_t i = 0; i < im.convs_per_stage; ++i) {
      total += 2.0 * 9.0 * static_cast<double>(in * im.channels[s]) * static_cast<double>(h * w);
      in = im.channels[s];
    }
    if (s + 1 == im.channels.size()) break;
    if (auto pool = std::dynamic_pointer_cast<nn::ContextPool2d>((*downsample)[s])) {
      total += context_pool2d_flops(*pool, in, h, w);
      h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;  // centres 0, 2, 4, ...
    } else {
      h /= 2, w /= 2;  // 2x2 windows, floor
    }
  }
  return total + 2.0 * static_cast<double>(in * im.num_classes);
}

}  // namespace ctxpool::models
