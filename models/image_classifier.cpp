#include "models/image_classifier.h"

#include <algorithm>

#include "models/convnet.h"
#include "models/vit.h"
#include "ops/ops.h"

namespace ctxpool::models {

Tensor ImageClassifier::auxiliary_loss() const {
  Tensor total;
  for (const auto& pool : context_pools()) {
    const Tensor t = pool->auxiliary_loss();
    if (t.defined()) total = total.defined() ? ops::add(total, t) : t;
  }
  return total;
}

std::vector<std::pair<std::string, double>> ImageClassifier::diagnostics() const {
  std::vector<std::pair<std::string, double>> out;
  const auto pools = context_pools();
  for (size_t l = 0; l < pools.size(); ++l) {
    out.emplace_back("cp_support/" + std::to_string(l), pools[l]->mean_support());
    out.emplace_back("cp_weight/" + std::to_string(l), pools[l]->mean_weight());
  }
  return out;
}

std::shared_ptr<ImageClassifier> make_image_classifier(const ModelConfig& config, DType dtype) {
  config.validate();
  const ImageModelConfig& im = config.image;
  CTXPOOL_CHECK(im.in_channels > 0 && im.image_size > 0 && im.num_classes > 0, "make_image_classifier: "
                "model.image.in_channels, image_size and num_classes must be set (got ", im.in_channels, ", ",
                im.image_size, ", ", im.num_classes, ")");
  if (config.type == "vit") return std::make_shared<VisionTransformer>(config, dtype);
  if (config.type == "convnet") return std::make_shared<ConvNet>(config, dtype);
  detail::fail("make_image_classifier: model.type \"", config.type, "\" is not an image classifier (vit, convnet)");
}

nn::ContextPool2dOptions context_pool2d_options(const ContextPoolConfig& c, int64_t stride) {
  nn::ContextPool2dOptions o;
  o.pool.window = c.window;
  o.pool.stride = stride;
  o.pool.s_min = c.s_min;
  if (c.s_max > 0) o.pool.s_max = c.s_max;
  if (c.s_fixed > 0) o.pool.s_fixed = c.s_fixed;
  o.pool.mode = ops::context_pool_mode_from_string(c.mode);
  o.hidden = c.hidden;
  o.kernel_size = c.kernel_size;
  o.residual = c.residual;
  o.lambda = c.lambda;
  return o;
}

double context_pool2d_flops(const nn::ContextPool2d& pool, int64_t d, int64_t h, int64_t w) {
  const auto& o = pool.options().pool;
  const int64_t k = o.window, s = o.stride;
  // Window positions inside the grid along one axis, summed over that axis' output centres.
  auto inside = [k, s](int64_t n) {
    double total = 0;
    for (int64_t c = 0; c < n; c += s) total += static_cast<double>(std::min(n - 1, c + k) - std::max<int64_t>(0, c - k) + 1);
    return total;
  };
  double flops = 2.0 * static_cast<double>(d) * inside(h) * inside(w);
  if (pool.conv1) {
    const double hid = static_cast<double>(pool.conv1->out_channels);
    const double taps = static_cast<double>(pool.options().kernel_size * pool.options().kernel_size);
    flops += 2.0 * taps * (static_cast<double>(d) * hid + hid * 2.0) * static_cast<double>(h * w);
  }
  return flops;
}

}  // namespace ctxpool::models
