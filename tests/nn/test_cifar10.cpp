// JPEG decoding and the CIFAR-10 reader on a small tree of JPEG files written here: labels from
// the folders, pixel values, the fixed shuffled order, the cache (written once, reused, rebuilt when damaged or stale), and
// clear errors for missing folders and wrong images.
#include <filesystem>

#include <unistd.h>

#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "nn/data/cifar10.h"
#include "nn/data/jpeg.h"

using namespace ctxpool;
using namespace ctxpool::nn::data;
namespace fs = std::filesystem;

namespace {

// A flat-coloured image: JPEG keeps flat colours almost exactly.
DecodedImage flat(int64_t side, uint8_t r, uint8_t g, uint8_t b) {
  DecodedImage img{side, side, 3, {}};
  for (int64_t p = 0; p < side * side; ++p) img.pixels.insert(img.pixels.end(), {r, g, b});
  return img;
}

// dir/<split>/<class>/000k.jpg, `per_class` images per class; class k has colour (20 k, 200 - 10 k, 7 i).
std::string make_tree(const std::string& name, int per_class) {
  const std::string dir = ::testing::TempDir() + "/ctxpool_cifar_" + name + "_" + std::to_string(::getpid());
  fs::remove_all(dir);
  for (size_t k = 0; k < cifar10_classes().size(); ++k) {
    const std::string folder = dir + "/test/" + cifar10_classes()[k];
    make_directories(folder);
    for (int i = 0; i < per_class; ++i)
      encode_jpeg(folder + "/000" + std::to_string(i) + ".jpg",
                  flat(32, uint8_t(20 * k), uint8_t(200 - 10 * k), uint8_t(7 * i)));
  }
  return dir;
}

}  // namespace

TEST(Cifar10, ReadsTheJpegTreeAndCachesIt) {
  if (!jpeg_supported()) GTEST_SKIP() << "built without libjpeg";
  const std::string dir = make_tree("read", 2);
  const ImageSet set = load_cifar10(dir, "test");
  ASSERT_EQ(set.images.sizes(), Shape({20, 3, 32, 32}));
  EXPECT_EQ(set.num_classes, 10);
  const float* px = set.images.data_ptr<float>();
  const int64_t* labels = set.labels.data_ptr<int64_t>();
  int64_t per_class[10] = {}, per_file[10][2] = {}, out_of_class_order = 0;
  for (int64_t i = 0; i < 20; ++i) {
    const int64_t k = labels[i];
    ASSERT_TRUE(k >= 0 && k < 10) << k;
    ++per_class[k];
    out_of_class_order += i > 0 && k < labels[i - 1];
    const float* img = px + i * 3072;  // each image with its own label: the colours say which it is
    EXPECT_NEAR(img[0] * 255, 20.0 * k, 3.0);                 // R plane
    EXPECT_NEAR(img[1024 + 500] * 255, 200.0 - 10 * k, 3.0);  // G plane
    const double blue = img[2048 + 1023] * 255;               // B plane: 0 or 7 (the class's file 0 or 1)
    ASSERT_TRUE(std::abs(blue) < 3.0 || std::abs(blue - 7.0) < 3.0) << blue;
    ++per_file[k][std::abs(blue) < 3.0 ? 0 : 1];
  }
  for (int64_t k = 0; k < 10; ++k) {  // every file once
    EXPECT_EQ(per_class[k], 2) << "class " << k;
    EXPECT_EQ(per_file[k][0], 1) << "class " << k;
    EXPECT_EQ(per_file[k][1], 1) << "class " << k;
  }
  // Not by class: shuffled, so that the end of a training set (a validation split) has every class.
  EXPECT_GE(out_of_class_order, 3);
  ASSERT_TRUE(file_exists(dir + "/test.cache"));
  // The second load reads the cache: the same values, even with a JPEG's pixels unreadable now...
  // (the fingerprint is of paths and sizes, so overwrite one file with same-sized garbage)
  const std::string victim = dir + "/test/cat/0001.jpg";
  const size_t bytes = read_file(victim).size();
  write_file_atomic(victim, std::string(bytes, 'x'));
  const ImageSet again = load_cifar10(dir, "test");
  EXPECT_EQ(ops::max(ops::abs(ops::sub(again.images, set.images))).item(), 0.0);
  // ...a damaged cache is rebuilt from the JPEGs (and then the garbage file is an error naming it).
  std::string cache = read_file(dir + "/test.cache");
  cache[cache.size() / 2] ^= 1;
  write_file_atomic(dir + "/test.cache", cache);
  EXPECT_ERROR_WITH(load_cifar10(dir, "test"), "0001.jpg");
}

TEST(Cifar10, AStaleCacheIsRebuilt) {
  if (!jpeg_supported()) GTEST_SKIP() << "built without libjpeg";
  const std::string dir = make_tree("stale", 1);
  EXPECT_EQ(load_cifar10(dir, "test").size(), 10);
  encode_jpeg(dir + "/test/dog/0009.jpg", flat(32, 1, 2, 3));  // a new file: the fingerprint changes
  const ImageSet set = load_cifar10(dir, "test");
  EXPECT_EQ(set.size(), 11);
  EXPECT_EQ(ops::sum(ops::eq(set.labels, scalar_tensor(5, kInt64)).to(kInt64)).item(), 2);  // dog's two images
}

TEST(Cifar10, ClearErrors) {
  if (!jpeg_supported()) GTEST_SKIP() << "built without libjpeg";
  EXPECT_ERROR_WITH(load_cifar10("/nonexistent", "test"), "get_cifar10.sh");
  EXPECT_ERROR_WITH(load_cifar10("/nonexistent", "valid"), "split must be");
  const std::string dir = make_tree("errors", 1);
  fs::remove_all(dir + "/test/frog");
  EXPECT_ERROR_WITH(load_cifar10(dir, "test"), "class folder");
  make_directories(dir + "/test/frog");
  encode_jpeg(dir + "/test/frog/0000.jpg", flat(16, 1, 2, 3));
  EXPECT_ERROR_WITH(load_cifar10(dir, "test"), "is 16x16 with 3 channels; expected 32x32 RGB");
  write_file_atomic(dir + "/test/frog/0000.jpg", "not a jpeg at all");
  EXPECT_ERROR_WITH(load_cifar10(dir, "test"), "cannot decode");
}
