// Inputs found by review to need a clear error (or a correct answer) instead of undefined behaviour.
#include <limits>

#include "core/file_io.h"
#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(EdgeCases, ZeroDimTensors) {
  Tensor s = scalar_tensor(1.0);
  EXPECT_ERROR_WITH(s.size(0), "size", "0-d");
  EXPECT_ERROR_WITH(s.select(0, 0), "select", "0-d");
  EXPECT_ERROR_WITH(ops::split(s, 1), "split", "0-d");
  EXPECT_ERROR_WITH(ops::chunk(s, 2), "chunk", "0-d");
  EXPECT_ERROR_WITH(ops::gather(s, 0, tensor({0.0}, {}, kInt64)), "gather", "0-d");
}

TEST(EdgeCases, HugeAndNegativeShapes) {
  EXPECT_ERROR_WITH(zeros({int64_t(1) << 31, int64_t(1) << 31}), "zeros", "too large");
  EXPECT_ERROR_WITH(ones({2}).expand({-5}), "expand", "invalid size -5");
  Tensor x = arange(10);
  EXPECT_EQ(x.slice(0, 0, 10, std::numeric_limits<int64_t>::max()).sizes(), (Shape{1}));
  EXPECT_TRUE(zeros({2, 0}).is_contiguous());
  EXPECT_TRUE(zeros({2, 0}).t().is_contiguous());
}

TEST(EdgeCases, InPlaceAliasing) {
  Tensor e = zeros({1}).expand({3});
  {
    NoGradGuard g;
    EXPECT_ERROR_WITH(e.add_(ones({3})), "add_", "expanded view");
    EXPECT_ERROR_WITH(e.mul_(2.0), "mul_", "expanded view");
    EXPECT_ERROR_WITH(e.copy_(ones({3})), "copy_", "expanded view");
  }
  // A source that overlaps the destination in another layout is read before it is overwritten.
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  Tensor want = ops::add(x, x.t());
  x.add_(x.t());
  expect_values(x, want.to_vector<double>());
  Tensor y = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  y.copy_(y.t());
  expect_values(y, {1, 3, 2, 4});
}

TEST(EdgeCases, IndicesChangedBeforeBackwardAreCaught) {
  Tensor w = param({4, 2});
  Tensor idx = tensor({1.0, 3.0}, kInt64);
  Tensor y = ops::embedding(w, idx);
  idx.fill_(100.0);
  EXPECT_ERROR_WITH(y.sum().backward(), "embedding", "modified by an in-place operation");
  Tensor x = param({2, 3});
  Tensor gi = tensor({0.0, 2.0}, {2, 1}, kInt64);
  Tensor g = ops::gather(x, 1, gi);
  gi.fill_(1.0);
  EXPECT_ERROR_WITH(g.sum().backward(), "gather", "modified by an in-place operation");
  EXPECT_ERROR_WITH(ops::scatter_add(zeros({3}), 0, tensor({0.0}, {1, 1}, kInt64), ones({1})), "scatter_add");
  EXPECT_ERROR_WITH(ops::scatter_add(zeros({3, 1}), 0, tensor({0.0}, {1, 1}, kInt64), ones({1})), "scatter_add", "src [1]");
}

// An explicit thread count (--threads, train.threads) wins over CTXPOOL_NUM_THREADS, which ctest sets
// to 2 for every test: the environment is applied before, never after, set_num_threads.
TEST(Threads, ExplicitCountWinsOverTheEnvironment) {
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  set_num_threads(2);
  EXPECT_EQ(get_num_threads(), 2);
}

// Reading a device or pipe would never end (/dev/zero) or block; only regular files are read.
TEST(FileIo, OnlyRegularFilesAreRead) {
  EXPECT_ERROR_WITH(read_file("/dev/zero"), "/dev/zero", "not a regular file");
  EXPECT_ERROR_WITH(read_file("/nonexistent/ctxpool"), "does not exist");
  EXPECT_ERROR_WITH(read_file("/tmp"), "is a directory");
}
