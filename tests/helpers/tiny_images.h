// A synthetic image-classification task (no data files needed) for the image model and trainer
// tests: class k of 10 is a stripe texture of its own orientation (5) and frequency (2), at a random
// phase, plus noise, in 8x8 images: local evidence that convolutions and patches both can read.
#pragma once
#include <algorithm>
#include <cmath>
#include <tuple>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/random.h"
#include "models/config.h"
#include "models/image_trainer.h"

namespace ctxpool::testing {

inline nn::data::ImageSet block_images(int64_t n, uint64_t seed) {
  const int64_t side = 8;
  Generator g(seed);
  std::vector<double> noise(n * side * side), u(2 * n);
  g.normal(noise.data(), static_cast<int64_t>(noise.size()));
  g.uniform(u.data(), 2 * n);
  std::vector<float> px(n * side * side);
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = std::min<int64_t>(9, static_cast<int64_t>(u[2 * i] * 10));
    labels[i] = k;
    const double angle = 3.14159265358979 * static_cast<double>(k % 5) / 5.0, freq = k < 5 ? 0.15 : 0.35;
    const double phase = 6.28318530717959 * u[2 * i + 1];
    for (int64_t p = 0; p < side * side; ++p) {
      const double y = static_cast<double>(p / side), x = static_cast<double>(p % side);
      const double v = std::cos(6.28318530717959 * freq * (x * std::cos(angle) + y * std::sin(angle)) + phase);
      px[i * side * side + p] = static_cast<float>(v + 0.3 * noise[i * side * side + p]);
    }
  }
  return {from_vector(px, {n, 1, side, side}, kFloat32), from_vector(labels, {n}, kInt64)};
}

inline models::ImageData block_data(int64_t train = 512) {
  return {block_images(train, 1), block_images(128, 2), block_images(128, 3), "tiny blocks"};
}

// The stripes task as an IDX dataset directory in Fashion-MNIST's layout (28x28 grey bytes), for
// code paths that load data.dataset "fashion_mnist" from files (the experiment runner, ctxpool-train).
inline void write_idx_dataset(const std::string& dir, int64_t train, int64_t test) {
  make_directories(dir);
  auto write = [&](const std::string& name, const std::vector<int64_t>& dims, const std::vector<uint8_t>& values) {
    std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
    for (int64_t d : dims)
      for (int shift = 24; shift >= 0; shift -= 8) bytes += static_cast<char>((d >> shift) & 0xFF);
    bytes.append(values.begin(), values.end());
    write_file_atomic(dir + "/" + name, bytes);
  };
  for (const auto& [prefix, n, seed] : {std::tuple<std::string, int64_t, uint64_t>{"train", train, 11},
                                        std::tuple<std::string, int64_t, uint64_t>{"t10k", test, 12}}) {
    const nn::data::ImageSet small = block_images(n, seed);  // 8x8, upsampled 3x and padded to 28x28
    const float* px = small.images.data_ptr<float>();
    std::vector<uint8_t> images(n * 28 * 28, 0), labels(n);
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<uint8_t>(small.labels.data_ptr<int64_t>()[i]);
      for (int64_t y = 0; y < 24; ++y)
        for (int64_t x = 0; x < 24; ++x) {
          const float v = std::clamp(px[i * 64 + (y / 3) * 8 + x / 3] * 0.4f + 0.5f, 0.0f, 1.0f);
          images[i * 784 + (y + 2) * 28 + x + 2] = static_cast<uint8_t>(v * 255.0f);
        }
    }
    write(prefix + "-images-idx3-ubyte", {n, 28, 28}, images);
    write(prefix + "-labels-idx1-ubyte", {n}, labels);
  }
}

// A tiny image-classifier run config of the given model type ("vit" or "convnet").
inline models::RunConfig tiny_image_config(const std::string& type, const std::string& run_dir, int64_t steps) {
  models::RunConfig c;
  c.model.type = type;
  c.model.n_layers = 1;
  c.model.d_model = 16;
  c.model.n_heads = 2;
  c.model.d_mlp = 32;
  c.model.image.patch_size = 2;
  c.model.image.channels = {8, 16};
  c.model.image.convs_per_stage = 1;
  c.model.context_pool.window = 1;
  c.data.dataset = "fashion_mnist";  // never loaded: the tests pass their data in
  c.data.normalize = true;
  c.optim.lr = 3e-3;
  c.optim.weight_decay = 0.0;
  c.train.steps = steps;
  c.train.batch_size = 32;
  c.train.eval_interval = 0;
  c.train.eval_batch_size = 64;
  c.train.log_interval = 1000;
  c.train.checkpoint_interval = 0;
  c.train.run_dir = run_dir;
  return c;
}

}  // namespace ctxpool::testing
