// Edge values where ctxpool follows PyTorch's rules (issue 10): NaN through relu and maximum /
// minimum (values and gradients), pow's gradients at base 0, integer and bool arithmetic refused
// rather than truncated or crashed, and dims of 0-d tensors checked. Expected values are PyTorch
// 1.13's (torch.relu, maximum, minimum, pow and their .grad, run on these inputs).
#include <cmath>

#include "autograd/engine.h"
#include "helpers/test_utils.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

// Each value as double, NaN compared as NaN.
void expect_same(const Tensor& t, const std::vector<double>& want) {
  const auto got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(got[i])) << "at " << i << ": " << got[i];
    else EXPECT_EQ(got[i], want[i]) << "at " << i;
  }
}

Tensor leaf(const std::vector<double>& v) {
  return from_vector(v, {static_cast<int64_t>(v.size())}, kFloat64).requires_grad_(true);
}

}  // namespace

TEST(EdgeValues, ReluPassesNaNAndItsGradient) {
  const Tensor x = leaf({NAN, -1.0, 0.0, 2.0});
  const Tensor y = ops::relu(x);
  expect_same(y, {NAN, 0.0, 0.0, 2.0});
  ops::sum(ops::mul(y, from_vector(std::vector<double>{3, 3, 3, 3}, {4}, kFloat64))).backward();
  expect_same(x.grad(), {3.0, 0.0, 0.0, 3.0});  // x <= 0: 0; NaN: passed
}

TEST(EdgeValues, MaximumAndMinimumGradientsAtTiesAndNaN) {
  const Tensor a = leaf({1.0, 2.0, NAN, 5.0}), b = leaf({1.0, 3.0, 4.0, NAN});
  const Tensor hi = ops::maximum(a, b);
  expect_same(hi, {1.0, 3.0, NAN, NAN});
  ops::sum(hi).backward();
  expect_same(a.grad(), {0.5, 0.0, 1.0, 1.0});  // tie: half; smaller: none; NaN: both get all
  expect_same(b.grad(), {0.5, 1.0, 1.0, 1.0});
  const Tensor c = leaf({1.0, 2.0, NAN}), d = leaf({1.0, 3.0, 0.0});
  const Tensor lo = ops::minimum(c, d);
  expect_same(lo, {1.0, 2.0, NAN});
  ops::sum(lo).backward();
  expect_same(c.grad(), {0.5, 1.0, 1.0});
  expect_same(d.grad(), {0.5, 0.0, 1.0});
}

TEST(EdgeValues, PowGradientsAtBaseZero) {
  const Tensor x = leaf({0.0, 0.0, 0.0, 2.0}), p = leaf({0.0, 2.0, 0.5, 3.0});
  const Tensor y = ops::pow(x, p);
  expect_same(y, {1.0, 0.0, 0.0, 8.0});
  ops::sum(y).backward();
  // d/dx = p x^(p-1): 0 where p = 0; 2 * 0 = 0; 0.5 * 0^-0.5 = inf (as PyTorch); 3 * 4 = 12.
  expect_same(x.grad(), {0.0, 0.0, INFINITY, 12.0});
  // d/dp = x^p log x: 0 where x = 0 and p >= 0; 8 log 2.
  expect_same(p.grad(), {0.0, 0.0, 0.0, 8.0 * std::log(2.0)});
}

TEST(EdgeValues, IntegerAndBoolArithmeticIsRefusedNotTruncatedOrCrashed) {
  const Tensor i = from_vector(std::vector<int64_t>{7, INT64_MIN}, {2}, kInt64);
  const Tensor z = from_vector(std::vector<int64_t>{0, -1}, {2}, kInt64);
  EXPECT_ERROR_WITH(ops::div(i, z), "div: expected floating-point tensors", "int64");  // no SIGFPE
  EXPECT_ERROR_WITH(ops::add(i, ops::scalar_like(0.5, i)), "scalar 0.5 cannot be represented", "int64");
  expect_same(ops::add(i, ops::scalar_like(2.0, i)), {9.0, static_cast<double>(INT64_MIN + 2)});  // exact: fine
  const Tensor t = from_vector(std::vector<int64_t>{1, 0}, {2}, kInt64).to(kBool);
  EXPECT_ERROR_WITH(ops::add(t, t), "add: arithmetic on bool tensors is not supported", "logical_and");
  EXPECT_ERROR_WITH(ops::scalar_like(2.0, t), "cannot be represented in a bool tensor");
  expect_same(ops::logical_and(t, t).to(kInt64), {1.0, 0.0});
  expect_same(ops::eq(t, t).to(kInt64), {1.0, 1.0});  // comparisons still work
}

TEST(EdgeValues, DimsOfZeroDimTensorsAreChecked) {
  const Tensor s = scalar_tensor(3.0, kFloat32);
  EXPECT_EQ(ops::squeeze(s, 0).dim(), 0);
  EXPECT_EQ(ops::squeeze(s, -1).dim(), 0);
  EXPECT_ERROR_WITH(ops::squeeze(s, 5), "squeeze: dim 5 is out of range for a tensor with 0 dims");
  EXPECT_EQ(ops::transpose(s, 0, -1).dim(), 0);
  EXPECT_ERROR_WITH(ops::transpose(s, 3, 4), "transpose: dim 3 is out of range");
}

TEST(EdgeValues, MaxAndMinOfAllSplitTheGradientAmongTies) {
  const Tensor x = leaf({1.0, 3.0, 3.0, -2.0, 3.0});
  ops::max(x).backward();
  expect_same(x.grad(), {0.0, 1.0 / 3, 1.0 / 3, 0.0, 1.0 / 3});
  const Tensor y = leaf({-2.0, 0.0, -2.0});
  ops::mul(ops::min(y), scalar_tensor(4.0, kFloat64)).backward();
  expect_same(y.grad(), {2.0, 0.0, 2.0});
  const Tensor z = leaf({1.0, NAN, 2.0});
  ops::max(z).backward();
  expect_same(z.grad(), {0.0, 1.0, 0.0});  // the NaN element is the max
  // Gradcheck away from ties.
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return ops::max(in[0]); },
                   {from_vector(std::vector<double>{0.3, -1.2, 2.5, 0.7}, {2, 2}, kFloat64).requires_grad_(true)});
}

TEST(ErrorMessages, SayWhatIsWrong) {
  EXPECT_ERROR_WITH(ops::matmul(zeros({2, 3, 4}), zeros({3, 4, 5})), "matmul", "[2, 3, 4]", "[3, 4, 5]");
  EXPECT_ERROR_WITH(ops::unsqueeze(zeros({2, 3}), 4), "unsqueeze: dim 4", "[-3, 2]");
  EXPECT_ERROR_WITH(ops::scatter_add(zeros({3}), 0, from_vector(std::vector<int64_t>{5}, {1}, kInt64), ones({1})),
                    "scatter_add", "index 5", "size 3");
  // A graph with no saved tensors, backward twice: the message must not blame saved tensors.
  const Tensor a = ones({2}).requires_grad_(true);
  const Tensor y = ops::sum(ops::add(a, a));
  y.backward();
  EXPECT_ERROR_WITH(y.backward(), "backward", "already");
}
