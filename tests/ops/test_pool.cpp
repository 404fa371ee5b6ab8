// 2-D pooling (ops/pool.cpp): values worked out by hand, gradients against finite differences
// (first and second order), determinism across thread counts, and the errors for bad arguments.
// Agreement with PyTorch on many geometries is in test_golden.cpp (tests/golden/pool.safetensors).
#include <cmath>
#include <numeric>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

namespace {

// A float64 leaf whose values are all different (a permutation of k / n, n = numel), so that no
// window has a tie and a finite-difference step never changes which element is the maximum.
Tensor distinct(const Shape& sizes) {
  const int64_t n = shape_numel(sizes);
  int64_t step = 37;
  while (std::gcd(step, n) != 1) ++step;  // i -> i * step mod n is a permutation
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = static_cast<double>((i * step) % n) / n - 0.5;
  return tensor(values, sizes, kFloat64).requires_grad_(true);
}

std::vector<int64_t> int_values(const Tensor& t) { return t.to_vector<int64_t>(); }

}  // namespace

TEST(MaxPool2d, ValuesAndIndices) {
  // x[h][w] = 4h + w: the maximum of each 2 x 2 block is its bottom-right element.
  const Tensor x = arange(16, kFloat64).reshape({1, 1, 4, 4});
  auto [values, indices] = ops::max_pool2d_with_indices(x, {2, 2});
  EXPECT_EQ(values.sizes(), (Shape{1, 1, 2, 2}));
  expect_values(values, {5, 7, 13, 15}, 0);
  EXPECT_EQ(int_values(indices), (std::vector<int64_t>{5, 7, 13, 15}));
  // Stride 1, padding 1: windows of 3 x 3 around every position.
  expect_values(ops::max_pool2d(x, {3, 3}, {{1, 1}}, {1, 1}),
                {5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15, 13, 14, 15, 15}, 0);
  // Dilation 2: a 2 x 2 kernel reads (h, w), (h, w + 2), (h + 2, w), (h + 2, w + 2).
  expect_values(ops::max_pool2d(x, {2, 2}, {{1, 1}}, {0, 0}, {2, 2}), {10, 11, 14, 15}, 0);
  // Rectangular kernel and stride, unbatched [C, H, W] input.
  const Tensor y = ops::max_pool2d(x.reshape({1, 4, 4}), {1, 4}, {{2, 1}});
  EXPECT_EQ(y.sizes(), (Shape{1, 2, 1}));
  expect_values(y, {3, 11}, 0);
  // float32 gives the same values.
  expect_values(ops::max_pool2d(x.to(kFloat32), {2, 2}), {5, 7, 13, 15}, 0);
}

TEST(MaxPool2d, CeilModeAndEmptyBatch) {
  const Tensor x = arange(25, kFloat64).reshape({1, 1, 5, 5});
  EXPECT_EQ(ops::max_pool2d(x, {2, 2}).sizes(), (Shape{1, 1, 2, 2}));
  // ceil_mode keeps the partial windows at the end: rows 4, columns 4.
  const Tensor ceil = ops::max_pool2d(x, {2, 2}, std::nullopt, {0, 0}, {1, 1}, true);
  expect_values(ceil, {6, 8, 9, 16, 18, 19, 21, 23, 24}, 0);
  // ...but never a window that starts in the right padding: with padding 1, rounding up would give a
  // fourth window starting at row 3 * 2 - 1 = 5 = H, so there are 3.
  EXPECT_EQ(ops::max_pool2d(x, {2, 2}, std::nullopt, {1, 1}, {1, 1}, true).sizes(), (Shape{1, 1, 3, 3}));
  // A batch of zero images is fine (C, H, W are not).
  EXPECT_EQ(ops::max_pool2d(zeros({0, 2, 4, 4}), {2, 2}).sizes(), (Shape{0, 2, 2, 2}));
}

TEST(MaxPool2d, TiesPaddingAndNaN) {
  // Equal values: the first maximum in row-major order wins (as PyTorch's CPU kernel).
  auto [values, indices] = ops::max_pool2d_with_indices(full({1, 1, 2, 4}, -3.0, kFloat64), {2, 2});
  expect_values(values, {-3, -3}, 0);
  EXPECT_EQ(int_values(indices), (std::vector<int64_t>{0, 2}));
  // Padding is -inf, not 0: an all-negative input keeps its values, and its index is a real position.
  auto [padded, padded_indices] =
      ops::max_pool2d_with_indices(full({1, 1, 2, 2}, -7.0, kFloat64), {2, 2}, {{1, 1}}, {1, 1});
  expect_values(padded, std::vector<double>(9, -7.0), 0);
  EXPECT_EQ(int_values(padded_indices), (std::vector<int64_t>{0, 0, 1, 0, 0, 1, 2, 2, 3}));
  // A NaN is the maximum of its window.
  const Tensor with_nan = tensor({1.0, NAN, 3.0, 2.0}, {1, 2, 2}, kFloat64);
  EXPECT_TRUE(std::isnan(ops::max_pool2d(with_nan, {2, 2}).item()));
}

TEST(MaxPool2d, GradientGoesToTheArgmax) {
  Tensor x = full({1, 1, 2, 4}, 1.0, TensorOptions(kFloat64).requires_grad(true));
  // Overlapping windows of tied values (columns [0, 2), [1, 3), [2, 4)) each pick their first element.
  ops::sum(ops::max_pool2d(x, {2, 2}, {{1, 1}})).backward();
  expect_values(x.grad(), {1, 1, 1, 0, 0, 0, 0, 0}, 0);
  // The backward reads the returned indices: changing them in place first is an error, not a wrong gradient.
  Tensor leaf = randn({1, 1, 4, 4}, TensorOptions(kFloat64).requires_grad(true));
  auto [values, indices] = ops::max_pool2d_with_indices(leaf, {2, 2});
  indices.fill_(0);
  EXPECT_ERROR_WITH(ops::sum(values).backward(), "max_pool2d", "modified by an in-place operation");
}

TEST(MaxPool2d, Gradcheck) {
  EXPECT_GRADCHECK([](const V& in) { return ops::max_pool2d(in[0], {2, 2}); }, V{distinct({2, 3, 4, 4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::max_pool2d(in[0], {3, 2}, {{2, 1}}, {1, 1}, {1, 2}, true); },
                   V{distinct({2, 2, 7, 6})});
  EXPECT_GRADCHECK([](const V& in) { return ops::max_pool2d(in[0], {3, 3}, {{1, 1}}, {1, 1}); },
                   V{distinct({3, 5, 5})});
  // The backward is a scatter whose own backward is a gather: second derivatives (zero in x, the
  // routing in the incoming gradient) check too.
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::max_pool2d(in[0], {2, 2}, {{1, 1}}); }, V{distinct({1, 2, 4, 5})});
}

TEST(AvgPool2d, ValuesPaddingAndCeilMode) {
  const Tensor x = arange(16, kFloat64).reshape({1, 1, 4, 4});
  expect_values(ops::avg_pool2d(x, {2, 2}), {2.5, 4.5, 10.5, 12.5}, 1e-12);
  // Padding 1 with a 3 x 3 window at stride 2 over ones: the corner windows hold 4 of 9 positions
  // (4 / 9 when the padding counts), the others 6 of 9.
  const Tensor ones4 = ones({1, 1, 4, 4}, kFloat64);
  expect_values(ops::avg_pool2d(ones4, {3, 3}, {{2, 2}}, {1, 1}), {4.0 / 9, 6.0 / 9, 6.0 / 9, 1.0}, 1e-12);
  expect_values(ops::avg_pool2d(ones4, {3, 3}, {{2, 2}}, {1, 1}, false, false), {1, 1, 1, 1}, 1e-12);
  // ceil_mode: the extra window at the end covers row/column 4 only, and the window size is counted
  // within the padded input, so ones stay ones (PyTorch's rule).
  const Tensor ones5 = ones({1, 1, 5, 5}, kFloat64);
  expect_values(ops::avg_pool2d(ones5, {2, 2}, std::nullopt, {0, 0}, true), std::vector<double>(9, 1.0), 1e-12);
  // float32, unbatched.
  expect_values(ops::avg_pool2d(x.reshape({1, 4, 4}).to(kFloat32), {4, 4}), {7.5}, 1e-6);
}

TEST(AvgPool2d, Gradcheck) {
  manual_seed(3);
  EXPECT_GRADCHECK([](const V& in) { return ops::avg_pool2d(in[0], {2, 2}); }, V{param({2, 2, 4, 6})});
  EXPECT_GRADCHECK([](const V& in) { return ops::avg_pool2d(in[0], {3, 2}, {{2, 1}}, {1, 1}, true); },
                   V{param({1, 2, 6, 5})});
  EXPECT_GRADCHECK([](const V& in) { return ops::avg_pool2d(in[0], {3, 3}, {{2, 2}}, {1, 1}, true, false); },
                   V{param({2, 5, 5})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::avg_pool2d(in[0], {3, 3}, {{2, 2}}, {1, 1}, true, false); },
                       V{param({1, 1, 5, 4})});
}

TEST(AdaptiveAvgPool2d, ValuesAndOverlappingWindows) {
  const Tensor x = arange(16, kFloat64).reshape({1, 1, 4, 4});
  expect_values(ops::adaptive_avg_pool2d(x, {1, 1}), {7.5}, 1e-12);            // global average
  expect_values(ops::adaptive_avg_pool2d(x, {2, 2}), {2.5, 4.5, 10.5, 12.5}, 1e-12);  // = avg_pool2d 2 x 2
  // 4 -> 3 rows: windows [0, 2), [1, 3), [2, 4) overlap. Columns stay (4 -> 4).
  const Tensor rows = ops::adaptive_avg_pool2d(x, {3, 4});
  EXPECT_EQ(rows.sizes(), (Shape{1, 1, 3, 4}));
  expect_values(ops::select(rows.reshape({3, 4}), 0, 1), {6, 7, 8, 9}, 1e-12);
  // Upsampling (out > in) repeats values; 3 -> 5 uses windows of one or two rows.
  const Tensor small = tensor({1.0, 2.0, 3.0}, {1, 3, 1}, kFloat64);
  expect_values(ops::adaptive_avg_pool2d(small, {5, 1}), {1, 1.5, 2, 2.5, 3}, 1e-12);
}

TEST(AdaptiveAvgPool2d, Gradcheck) {
  manual_seed(4);
  EXPECT_GRADCHECK([](const V& in) { return ops::adaptive_avg_pool2d(in[0], {3, 2}); }, V{param({2, 2, 5, 7})});
  EXPECT_GRADCHECK([](const V& in) { return ops::adaptive_avg_pool2d(in[0], {4, 6}); }, V{param({1, 3, 4})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::adaptive_avg_pool2d(in[0], {2, 3}); }, V{param({1, 2, 5, 4})});
}

// Each (b, c) plane is one task: the results do not depend on the thread count, bit for bit.
TEST(Pool2d, SameBitsForAnyThreadCount) {
  manual_seed(5);
  const Tensor x = randn({4, 16, 24, 24}, kFloat32);
  const Tensor g = randn({4, 16, 12, 12}, kFloat32);
  auto run = [&] {
    std::vector<float> out;
    for (int which = 0; which < 3; ++which) {
      Tensor leaf = x.clone().requires_grad_(true);
      Tensor y = which == 0   ? ops::max_pool2d(leaf, {3, 3}, {{2, 2}}, {1, 1})
                 : which == 1 ? ops::avg_pool2d(leaf, {3, 3}, {{2, 2}}, {1, 1})
                              : ops::adaptive_avg_pool2d(leaf, {12, 12});
      y.backward(g);
      for (const Tensor& t : {y, leaf.grad()})
        for (float v : t.to_vector<float>()) out.push_back(v);
    }
    return out;
  };
  const int threads = get_num_threads();
  set_num_threads(1);
  const std::vector<float> one = run();
  set_num_threads(4);
  const std::vector<float> four = run();
  set_num_threads(threads);
  EXPECT_EQ(one, four);
}

TEST(Pool2d, RejectsBadArguments) {
  const Tensor x = zeros({2, 3, 5, 5});
  EXPECT_ERROR_WITH(ops::max_pool2d(zeros({5, 5}), {2, 2}), "max_pool2d", "[B, C, H, W] or [C, H, W]", "[5, 5]");
  EXPECT_ERROR_WITH(ops::max_pool2d(zeros({2, 0, 4, 4}), {2, 2}), "max_pool2d", "[2, 0, 4, 4]");
  EXPECT_ERROR_WITH(ops::avg_pool2d(zeros({2, 3, 4, 4}, kInt64), {2, 2}), "avg_pool2d", "floating", "int64");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {0, 2}), "max_pool2d", "kernel size must be positive", "[0, 2]");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {2, 2}, {{0, 1}}), "max_pool2d", "stride must be positive", "[0, 1]");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {2, 2}, std::nullopt, {0, 0}, {1, 0}), "max_pool2d", "dilation");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {3, 3}, std::nullopt, {2, 1}), "max_pool2d",
                    "padding should be at most half of the kernel size", "[2, 1]", "[3, 3]");
  EXPECT_ERROR_WITH(ops::avg_pool2d(x, {2, 2}, std::nullopt, {-1, 0}), "avg_pool2d", "padding");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {7, 7}), "max_pool2d", "empty output", "[2, 3, 5, 5]", "kernel [7, 7]");
  EXPECT_ERROR_WITH(ops::max_pool2d(x, {2, 2}, {{1, 1}}, {0, 0}, {5, 5}), "max_pool2d", "empty output", "dilation [5, 5]");
  EXPECT_ERROR_WITH(ops::adaptive_avg_pool2d(x, {0, 2}), "adaptive_avg_pool2d", "output size must be positive");
  EXPECT_ERROR_WITH(ops::adaptive_avg_pool2d(zeros({3, 5}), {1, 1}), "adaptive_avg_pool2d", "[3, 5]");
}
