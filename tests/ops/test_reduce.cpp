#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Reduce, SumMeanVarValues) {
  Tensor a = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  EXPECT_EQ(a.sum().item(), 21.0);
  expect_values(a.sum({0}), {5, 7, 9});
  expect_values(a.sum({1}), {6, 15});
  EXPECT_EQ(a.sum({1}, true).sizes(), (Shape{2, 1}));
  expect_values(a.sum({-1, 0}), {21});
  expect_values(a.mean({0}), {2.5, 3.5, 4.5});
  EXPECT_NEAR(a.mean().item(), 3.5, 1e-12);
  expect_values(a.var({1}), {1, 1});
  expect_values(a.var({1}, false, 0), {2.0 / 3, 2.0 / 3});
  expect_values(a.t().sum({1}), {5, 7, 9});
  expect_values(arange(6, kInt64).reshape({2, 3}).sum({1}), {3, 12});
  Tensor mask = ops::gt(arange(300), scalar_tensor(10.0));
  EXPECT_EQ(mask.sum().dtype(), kInt64);
  EXPECT_EQ(mask.sum().item(), 289.0);  // counts past 255: no uint8 overflow
}

TEST(Reduce, MaxMinWithIndices) {
  Tensor a = tensor({3.0, 1.0, 7.0, 7.0, 2.0, 0.0}, {2, 3});
  auto [v, i] = ops::max(a, 1);
  expect_values(v, {7, 7});
  expect_values(i, {2, 0});  // first of ties
  EXPECT_EQ(i.dtype(), kInt64);
  auto [v0, i0] = ops::min(a, 0, true);
  EXPECT_EQ(v0.sizes(), (Shape{1, 3}));
  expect_values(v0, {3, 1, 0});
  expect_values(i0, {0, 0, 1});
  EXPECT_EQ(a.max().item(), 7.0);
  EXPECT_EQ(a.min().item(), 0.0);
  expect_values(ops::argmax(a, 0), {1, 1, 0});
}

TEST(Reduce, SumIsDeterministicAndAccurate) {
  // Many elements: blocks are summed in a fixed order, accumulated in double.
  Tensor x = full({1000003}, 0.1f);
  EXPECT_NEAR(x.sum().item(), 100000.3, 0.05);
  manual_seed(3);
  Tensor y = randn({100, 5000});
  const auto once = y.sum({1}).to_vector<float>();
  EXPECT_EQ(once, y.sum({1}).to_vector<float>());
}

// Reduced dims in a leading and a trailing block ([outer, kept, inner]: a bias's gradient) take
// two passes over contiguous rows; against loops, in float64 and int64, with keepdim.
TEST(Reduce, SumOverLeadingAndTrailingDims) {
  manual_seed(21);
  const Tensor x = randn({3, 4, 5, 6}, kFloat64);
  const std::vector<double> v = x.to_vector<double>();
  auto at = [&](int64_t a, int64_t b, int64_t c, int64_t d) { return v[((a * 4 + b) * 5 + c) * 6 + d]; };
  std::vector<double> want_023(4, 0.0), want_03(4 * 5, 0.0);
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t c = 0; c < 5; ++c)
        for (int64_t d = 0; d < 6; ++d) {
          want_023[b] += at(a, b, c, d);
          want_03[b * 5 + c] += at(a, b, c, d);
        }
  expect_values(x.sum({0, 2, 3}), want_023, 1e-12);
  expect_values(x.sum({0, 3}), want_03, 1e-12);
  EXPECT_EQ(x.sum({0, 2, 3}, true).sizes(), (Shape{1, 4, 1, 1}));
  // The same sums of a non-contiguous x go through one permuted copy.
  expect_values(x.transpose(1, 2).contiguous().transpose(1, 2).sum({0, 2, 3}), want_023, 1e-12);
  const Tensor counts = arange(120, kInt64).reshape({2, 3, 4, 5});
  // Element (a, b, c, d) is 60 a + 20 b + 5 c + d: per b, 40 of them summing to 1580 + 800 b.
  expect_values(counts.sum({0, 2, 3}), {1580, 2380, 3180});
  // float32 rounds the inner sums once before the outer pass: still within float32 rounding of the
  // float64 sum, relative to the sum of magnitudes.
  const Tensor big = randn({64, 8, 30, 30}, kFloat64);
  const auto exact = big.sum({0, 2, 3}).to_vector<double>(), mags = ops::abs(big).sum({0, 2, 3}).to_vector<double>();
  const auto single = big.to(kFloat32).sum({0, 2, 3}).to_vector<double>();
  for (size_t i = 0; i < exact.size(); ++i) EXPECT_LE(std::abs(single[i] - exact[i]), 1e-6 * mags[i]) << "channel " << i;
}

TEST(Reduce, BadInputs) {
  Tensor a = zeros({2, 3});
  EXPECT_ERROR_WITH(a.sum({2}), "sum", "dim 2", "out of range");
  EXPECT_ERROR_WITH(a.sum({1, 1}), "sum", "more than once");
  EXPECT_ERROR_WITH(ops::max(a, 5), "max", "out of range");
  EXPECT_ERROR_WITH(ops::max(zeros({2, 0}), 1), "max", "size 0");
  EXPECT_ERROR_WITH(ops::mean(arange(3, kInt64)), "mean", "floating");
}

TEST(ReduceGrad, AllReductions) {
  manual_seed(20);
  EXPECT_GRADCHECK([](const V& in) { return in[0].sum(); }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].sum({0, 2}); }, V{param({2, 3, 2})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].sum({1}, true); }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].mean({-1}); }, V{param({2, 4})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].mean(); }, V{param({3, 2})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].var({1}); }, V{param({2, 5})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].var({0, 1}, true, 0); }, V{param({3, 3})});
  EXPECT_GRADCHECK([](const V& in) { return ops::max(in[0], 1).first; }, V{param({3, 4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::min(in[0], 0, true).first; }, V{param({3, 4})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].max(); }, V{param({5})});
  // Non-contiguous input.
  EXPECT_GRADCHECK([](const V& in) { return in[0].t().sum({1}); }, V{param({3, 4})});
  EXPECT_GRADGRADCHECK([](const V& in) { return (in[0] * in[0]).var({1}); }, V{param({2, 3})});
}
