// Image batches: normalisation, crop + flip augmentation (each output is a shifted, maybe mirrored
// copy of its image), determinism per (seed, stream), and the background prefetcher.
#include <cmath>
#include <set>
#include <stdexcept>

#include "helpers/test_utils.h"
#include "nn/data/image_batch.h"
#include "nn/data/prefetcher.h"

using namespace ctxpool;
using namespace ctxpool::nn::data;

namespace {

// n images [n, c, h, w] of distinct values, labels i % 10.
ImageSet numbered_images(int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<float> px(n * c * h * w);
  for (size_t i = 0; i < px.size(); ++i) px[i] = 1.0f + static_cast<float>(i % 997) / 7.0f;
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 10;
  return {from_vector(px, {n, c, h, w}, kFloat32), from_vector(labels, {n}, kInt64)};
}

float at(const Tensor& t, int64_t i, int64_t ch, int64_t y, int64_t x) {
  const auto& s = t.sizes();
  return t.data_ptr<float>()[((i * s[1] + ch) * s[2] + y) * s[3] + x];
}

bool identical(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  const float *p = a.contiguous().data_ptr<float>(), *q = b.contiguous().data_ptr<float>();
  for (int64_t i = 0; i < a.numel(); ++i)
    if (p[i] != q[i]) return false;
  return true;
}

}  // namespace

TEST(ImageBatch, ChannelStatsAndNormalisation) {
  const ImageSet set = numbered_images(6, 2, 3, 4);
  std::vector<float> mean, std;
  channel_stats(set.images, mean, std);
  ASSERT_EQ(mean.size(), 2u);
  for (int ch = 0; ch < 2; ++ch) {
    double s = 0, sq = 0;
    for (int i = 0; i < 6; ++i)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x) s += at(set.images, i, ch, y, x), sq += double(at(set.images, i, ch, y, x)) * at(set.images, i, ch, y, x);
    const double m = s / 72, var = sq / 72 - m * m;
    EXPECT_NEAR(mean[ch], m, 1e-4);
    EXPECT_NEAR(std[ch], std::sqrt(var), 1e-4);
  }
  ImageTransform t;
  t.mean = mean;
  t.std = std;
  const ImageSet b = make_image_batch(set, {4, 1}, t, false, 0, 0);
  ASSERT_EQ(b.images.sizes(), Shape({2, 2, 3, 4}));
  EXPECT_EQ(b.labels.data_ptr<int64_t>()[0], 4);
  EXPECT_EQ(b.labels.data_ptr<int64_t>()[1], 1);
  for (int ch = 0; ch < 2; ++ch)
    EXPECT_NEAR(at(b.images, 0, ch, 2, 3), (at(set.images, 4, ch, 2, 3) - mean[ch]) / std[ch], 1e-5);
}

TEST(ImageBatch, CropAndFlipAreShiftedMirroredCopies) {
  const int64_t n = 64, h = 5, w = 6, pad = 2;
  const ImageSet set = numbered_images(n, 1, h, w);
  ImageTransform t;
  t.crop_padding = pad;
  t.horizontal_flip = true;
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  const ImageSet b = make_image_batch(set, idx, t, true, 7, 3);
  std::set<std::tuple<int, int, bool>> seen;
  for (int64_t i = 0; i < n; ++i) {
    // Find the (dy, dx, flip) that explains the output: exactly one must.
    int matches = 0;
    for (int dy = -pad; dy <= pad; ++dy)
      for (int dx = -pad; dx <= pad; ++dx)
        for (bool flip : {false, true}) {
          bool ok = true;
          for (int y = 0; y < h && ok; ++y)
            for (int x = 0; x < w && ok; ++x) {
              const int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
              const float want = sy >= 0 && sy < h && sx >= 0 && sx < w ? at(set.images, i, 0, sy, sx) : 0.0f;
              ok = at(b.images, i, 0, y, x) == want;
            }
          if (ok) ++matches, seen.insert({dy, dx, flip});
        }
    EXPECT_EQ(matches, 1) << "image " << i;
  }
  EXPECT_GT(seen.size(), 20u);  // 50 possible choices: the draws really vary
  // The same (seed, stream) gives the same batch; another stream another one; no augmentation: none.
  EXPECT_TRUE(identical(make_image_batch(set, idx, t, true, 7, 3).images, b.images));
  EXPECT_FALSE(identical(make_image_batch(set, idx, t, true, 7, 4).images, b.images));
  EXPECT_TRUE(identical(make_image_batch(set, idx, t, false, 7, 3).images, set.images));
}

TEST(ImageBatch, BadInputIsAClearError) {
  const ImageSet set = numbered_images(4, 3, 2, 2);
  EXPECT_ERROR_WITH(make_image_batch(set, {4}, {}, false, 0, 0), "index 4 is out of range for 4 images");
  ImageTransform t;
  t.mean = {0.5f};
  t.std = {1.0f};
  EXPECT_ERROR_WITH(make_image_batch(set, {0}, t, false, 0, 0), "one value per channel (3)");
  EXPECT_ERROR_WITH(make_image_batch({set.images.to(kFloat64), set.labels}, {0}, {}, false, 0, 0), "float32");
  EXPECT_ERROR_WITH(image_subset(set, 3, 2), "out of range for 4 images");
  const ImageSet sub = image_subset(set, 1, 2);
  EXPECT_EQ(sub.size(), 2);
  EXPECT_EQ(sub.labels.data_ptr<int64_t>()[0], 1);
}

TEST(Prefetcher, ItemsInOrderAndErrorsReachTheCaller) {
  std::vector<int64_t> made;
  Prefetcher<int64_t> p([&](int64_t k) { made.push_back(k); return k * k; }, 3);
  EXPECT_EQ(p.next(), 9);
  EXPECT_EQ(p.next(), 16);
  EXPECT_EQ(p.next(), 25);
  Prefetcher<int> failing([](int64_t k) -> int {
    if (k == 1) throw std::runtime_error("batch 1 is broken");
    return 0;
  }, 0);
  EXPECT_EQ(failing.next(), 0);
  EXPECT_THROW(failing.next(), std::runtime_error);
}

// A process's shard of a global batch (data parallelism) is augmented as those rows of the whole batch.
TEST(ImageBatch, AShardIsAugmentedAsItsRowsOfTheWholeBatch) {
  const ImageSet set = numbered_images(16, 1, 5, 6);
  ImageTransform t;
  t.crop_padding = 2;
  t.horizontal_flip = true;
  std::vector<int64_t> idx(16);
  for (int64_t i = 0; i < 16; ++i) idx[i] = 15 - i;
  const ImageSet whole = make_image_batch(set, idx, t, true, 7, 3);
  const std::vector<int64_t> second_half(idx.begin() + 8, idx.end());
  const ImageSet shard = make_image_batch(set, second_half, t, true, 7, 3, 8);
  EXPECT_TRUE(identical(shard.images, whole.images.narrow(0, 8, 8).contiguous()));
  EXPECT_FALSE(identical(make_image_batch(set, second_half, t, true, 7, 3).images, shard.images));
  EXPECT_ERROR_WITH(make_image_batch(set, second_half, t, true, 7, 3, -1), "make_image_batch", "first_position");
}
