// The IDX reader on good and broken files, and (where scripts/get_fashion_mnist.sh has unpacked the
// data; setup.sh does) Fashion-MNIST itself plus a tiny ConvNet whose test accuracy rises far above
// chance within seconds.
#include <filesystem>

#include <unistd.h>

#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/data/idx.h"
#include "nn/linear.h"
#include "nn/optim/adamw.h"
#include "nn/pool.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

std::string temp_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/ctxpool_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  make_directories(dir);
  return dir;
}

// An IDX file of unsigned bytes with the given dims and values (header + payload).
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::string s{0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xff);
  s.append(values.begin(), values.end());
  return s;
}

const std::string kData = CTXPOOL_SOURCE_DIR "/data/fashion-mnist";

}  // namespace

TEST(Idx, ReadsGoodFilesAndRefusesBrokenOnes) {
  const std::string dir = temp_dir("idx");
  write_file_atomic(dir + "/good", idx_bytes({2, 3}, {1, 2, 3, 4, 5, 255}));
  const auto a = nn::data::read_idx(dir + "/good");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.values, (std::vector<uint8_t>{1, 2, 3, 4, 5, 255}));

  std::string truncated = idx_bytes({2, 3}, {1, 2, 3, 4, 5});
  write_file_atomic(dir + "/truncated", truncated);
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/truncated"), "idx", "truncated", "promises 18");
  write_file_atomic(dir + "/padded", idx_bytes({2}, {1, 2, 3}));
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/padded"), "idx", "trailing bytes");
  write_file_atomic(dir + "/gzip", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/gzip"), "idx", "magic number", "gzip");
  std::string floats = idx_bytes({1}, {0, 0, 0, 0});
  floats[2] = 0x0D;
  write_file_atomic(dir + "/floats", floats);
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/floats"), "idx", "element type 0xd", "0x08");
  write_file_atomic(dir + "/short", std::string("\0\0", 2));
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/short"), "idx", "too short");
  EXPECT_ERROR_WITH(nn::data::read_idx(dir), "idx", "not a regular file");
  EXPECT_ERROR_WITH(nn::data::read_idx(dir + "/missing"), "idx", "does not exist", "get_fashion_mnist.sh");
  // A dataset whose labels do not match its images, or hold a non-class.
  write_file_atomic(dir + "/train-images-idx3-ubyte", idx_bytes({2, 28, 28}, std::vector<uint8_t>(2 * 784, 7)));
  write_file_atomic(dir + "/train-labels-idx1-ubyte", idx_bytes({3}, {1, 2, 3}));
  EXPECT_ERROR_WITH(nn::data::load_fashion_mnist(dir, "train"), "fashion-mnist", "2 images", "[3]");
  write_file_atomic(dir + "/train-labels-idx1-ubyte", idx_bytes({2}, {1, 12}));
  EXPECT_ERROR_WITH(nn::data::load_fashion_mnist(dir, "train"), "fashion-mnist", "label 12");
  write_file_atomic(dir + "/train-labels-idx1-ubyte", idx_bytes({2}, {1, 9}));
  const auto set = nn::data::load_fashion_mnist(dir, "train");
  EXPECT_EQ(set.images.sizes(), (Shape{2, 1, 28, 28}));
  EXPECT_NEAR(set.images.to_vector<double>()[0], 7.0 / 255.0, 1e-7);
  EXPECT_ERROR_WITH(nn::data::load_fashion_mnist(dir, "validation"), "split must be");
  std::filesystem::remove_all(dir);
}

TEST(FashionMnist, LoadsTheRealFiles) {
  if (!file_exists(kData + "/t10k-labels-idx1-ubyte")) GTEST_SKIP() << "run scripts/get_fashion_mnist.sh";
  const auto test = nn::data::load_fashion_mnist(kData, "test");
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.images.sizes(), (Shape{10000, 1, 28, 28}));
  // Balanced classes: 1,000 test images each.
  const auto counts = ops::sum(ops::one_hot(test.labels, 10), {0}).to_vector<double>();
  for (double c : counts) EXPECT_EQ(c, 1000.0);
}

// Max pool to 14x14 -> conv -> BN -> ReLU -> max pool -> linear, 100 AdamW steps on 1,024 training
// images: test accuracy on 1,000 images rises far above chance (10%).
TEST(FashionMnist, TinyConvNetLearns) {
  if (!file_exists(kData + "/train-labels-idx1-ubyte")) GTEST_SKIP() << "run scripts/get_fashion_mnist.sh";
  manual_seed(0);
  const auto train = nn::data::load_fashion_mnist(kData, "train");
  const auto test = nn::data::load_fashion_mnist(kData, "test");
  nn::Conv2dOptions pad1;
  pad1.padding = {1, 1};
  nn::Conv2d conv(1, 8, 3, pad1);
  nn::BatchNorm2d bn(8);
  nn::MaxPool2d pool(2);
  nn::Linear head(8 * 7 * 7, 10);
  auto forward = [&](const Tensor& x) {
    const Tensor h = pool.forward(ops::relu(bn.forward(conv.forward(pool.forward(x)))));  // [B, 8, 7, 7]
    return head.forward(ops::flatten(h, 1));
  };
  std::vector<Tensor> params;
  for (nn::Module* m : std::vector<nn::Module*>{&conv, &bn, &head})
    for (const Tensor& p : m->parameters()) params.push_back(p);
  nn::optim::AdamW opt(params, {3e-3, 0.9, 0.99, 1e-8, 0.0});
  for (int step = 0; step < 100; ++step) {
    const int64_t first = (step * 64) % 1024;
    const Tensor x = train.images.narrow(0, first, 64), y = train.labels.narrow(0, first, 64);
    const Tensor loss = ops::cross_entropy(forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  bn.eval();
  NoGradGuard no_grad;
  const Tensor pred = ops::argmax(forward(test.images.narrow(0, 0, 1000)), 1);
  const double accuracy = ops::mean(ops::eq(pred, test.labels.narrow(0, 0, 1000)).to(kFloat64)).item();
  EXPECT_GT(accuracy, 0.6) << "test accuracy " << accuracy;
}
