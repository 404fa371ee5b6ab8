#include "nn/data/image_batch.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/random.h"

namespace ctxpool::nn::data {

namespace {

void check_set(const ImageSet& set, const char* who) {
  CTXPOOL_CHECK(set.images.defined() && set.images.dim() == 4 && set.images.dtype() == kFloat32 &&
                    set.images.device().is_cpu() && set.images.is_contiguous(),
                who, ": expected contiguous float32 CPU images [N, C, H, W], got ",
                set.images.defined() ? shape_str(set.images.sizes()) : "undefined");
  CTXPOOL_CHECK(set.labels.defined() && set.labels.dim() == 1 && set.labels.dtype() == kInt64 &&
                    set.labels.numel() == set.images.sizes()[0],
                who, ": expected int64 labels [", set.images.sizes()[0], "], got ",
                set.labels.defined() ? shape_str(set.labels.sizes()) : "undefined");
}

}  // namespace

void channel_stats(const Tensor& images, std::vector<float>& mean, std::vector<float>& std) {
  check_set({images, zeros({images.defined() && images.dim() == 4 ? images.sizes()[0] : 0}, kInt64)},
            "channel_stats");
  const int64_t n = images.sizes()[0], c = images.sizes()[1], hw = images.sizes()[2] * images.sizes()[3];
  CTXPOOL_CHECK(n * hw > 0, "channel_stats: no pixels in images ", shape_str(images.sizes()));
  const float* x = images.data_ptr<float>();
  mean.assign(c, 0.0f);
  std.assign(c, 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float* p = x + (i * c + ch) * hw;
      for (int64_t k = 0; k < hw; ++k) sum += p[k], sq += double(p[k]) * p[k];
    }
    const double m = sum / double(n * hw);
    mean[ch] = static_cast<float>(m);
    std[ch] = static_cast<float>(std::sqrt(std::max(0.0, sq / double(n * hw) - m * m)));
  }
}

ImageSet make_image_batch(const ImageSet& set, const std::vector<int64_t>& indices, const ImageTransform& t,
                          bool augment, uint64_t seed, uint64_t stream, int64_t first_position) {
  check_set(set, "make_image_batch");
  const int64_t total = set.size(), c = set.images.sizes()[1], h = set.images.sizes()[2], w = set.images.sizes()[3];
  const int64_t n = static_cast<int64_t>(indices.size()), pad = augment ? t.crop_padding : 0;
  CTXPOOL_CHECK(t.mean.size() == t.std.size() && (t.mean.empty() || int64_t(t.mean.size()) == c),
                "make_image_batch: mean and std need one value per channel (", c, "), got ", t.mean.size(), " and ",
                t.std.size());
  for (float s : t.std) CTXPOOL_CHECK(s > 0, "make_image_batch: a channel std is ", s, " (must be positive)");
  CTXPOOL_CHECK(pad >= 0, "make_image_batch: crop_padding must be >= 0, got ", pad);
  CTXPOOL_CHECK(first_position >= 0, "make_image_batch: first_position must be >= 0, got ", first_position);

  // Three uniforms per image: crop row, crop column, flip (those of the positions before
  // first_position are drawn and dropped).
  std::vector<double> drawn(3 * (first_position + n));
  if (augment && n > 0) {
    Generator gen;
    gen.set_state(seed ^ (0xA0761D6478BD642Full * (stream + 1)), 0);
    gen.uniform(drawn.data(), static_cast<int64_t>(drawn.size()));
  }
  const double* u = drawn.data() + 3 * first_position;
  ImageSet out{empty({n, c, h, w}, kFloat32), empty({n}, kInt64), set.num_classes};
  const float* src = set.images.data_ptr<float>();
  const int64_t* labels = set.labels.data_ptr<int64_t>();
  float* dst = out.images.data_ptr<float>();
  int64_t* out_labels = out.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = indices[i];
    CTXPOOL_CHECK(idx >= 0 && idx < total, "make_image_batch: index ", idx, " is out of range for ", total, " images");
    out_labels[i] = labels[idx];
    // The crop's top-left corner in the padded image is (dy, dx) in [0, 2 pad]: output pixel (y, x)
    // reads input pixel (y + dy - pad, x + dx - pad), zero outside.
    const int64_t dy = pad > 0 ? std::min<int64_t>(2 * pad, int64_t(u[3 * i] * double(2 * pad + 1))) - pad : 0;
    const int64_t dx = pad > 0 ? std::min<int64_t>(2 * pad, int64_t(u[3 * i + 1] * double(2 * pad + 1))) - pad : 0;
    const bool flip = augment && t.horizontal_flip && u[3 * i + 2] < 0.5;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* in = src + (idx * c + ch) * h * w;
      float* o = dst + (i * c + ch) * h * w;
      const float m = t.mean.empty() ? 0.0f : t.mean[ch], inv = t.std.empty() ? 1.0f : 1.0f / t.std[ch];
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = (flip ? w - 1 - x : x) + dx;
          const float v = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? in[sy * w + sx] : 0.0f;
          o[y * w + x] = (v - m) * inv;
        }
      }
    }
  }
  return out;
}

ImageSet image_subset(const ImageSet& set, int64_t first, int64_t count) {
  check_set(set, "image_subset");
  CTXPOOL_CHECK(first >= 0 && count >= 0 && first + count <= set.size(), "image_subset: rows [", first, ", ",
                first + count, ") are out of range for ", set.size(), " images");
  return {set.images.narrow(0, first, count).contiguous().clone(), set.labels.narrow(0, first, count).clone(),
          set.num_classes};
}

}  // namespace ctxpool::nn::data
