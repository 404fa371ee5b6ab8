#include <cmath>

#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Elementwise, ForwardValues) {
  Tensor a = tensor({1.0, 4.0, 9.0}, kFloat64);
  Tensor b = tensor({2.0, -1.0, 0.5}, kFloat64);
  expect_values(a + b, {3, 3, 9.5});
  expect_values(a - b, {-1, 5, 8.5});
  expect_values(a * b, {2, -4, 4.5});
  expect_values(a / b, {0.5, -4, 18});
  expect_values(ops::pow(a, 0.5), {1, 2, 3});
  expect_values(ops::pow(a, b), {1, 0.25, 3});
  expect_values(ops::sqrt(a), {1, 2, 3});
  expect_values(ops::rsqrt(a), {1, 0.5, 1.0 / 3});
  expect_values(ops::log(a), {0, std::log(4.0), std::log(9.0)});
  expect_values(ops::exp(b), {std::exp(2.0), std::exp(-1.0), std::exp(0.5)});
  expect_values(ops::neg(b), {-2, 1, -0.5});
  expect_values(ops::abs(b), {2, 1, 0.5});
  expect_values(ops::relu(b), {2, 0, 0.5});
  expect_values(ops::sigmoid(b), {1 / (1 + std::exp(-2.0)), 1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-0.5))});
  expect_values(ops::tanh(b), {std::tanh(2.0), std::tanh(-1.0), std::tanh(0.5)});
  expect_values(ops::clamp(b, -0.5, 1.0), {1, -0.5, 0.5});
  expect_values(ops::maximum(a, b), {2, 4, 9});
  expect_values(ops::minimum(a, b), {1, -1, 0.5});
  expect_values(2.0 - a, {1, -2, -7});
  expect_values(1.0 / b, {0.5, -1, 2});
  expect_values(-a, {-1, -4, -9});
}

TEST(Elementwise, GeluMatchesDefinitions) {
  Tensor x = tensor({-2.0, -0.5, 0.0, 0.7, 3.0}, kFloat64);
  std::vector<double> exact, approx;
  for (double v : x.to_vector<double>()) {
    exact.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    approx.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  expect_values(ops::gelu(x), exact, 1e-12);
  expect_values(ops::gelu(x, "tanh"), approx, 1e-12);
  EXPECT_ERROR_WITH(ops::gelu(x, "fast"), "gelu", "\"none\" or \"tanh\"");
}

TEST(Elementwise, Broadcasting) {
  Tensor a = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  Tensor row = tensor({10.0, 20.0, 30.0}, {3});
  Tensor col = tensor({100.0, 200.0}, {2, 1});
  expect_values(a + row, {11, 22, 33, 14, 25, 36});
  expect_values(a + col, {101, 102, 103, 204, 205, 206});
  expect_values(row + col, {110, 120, 130, 210, 220, 230});
  expect_values(a.t() * 2.0, {2, 8, 4, 10, 6, 12});
}

TEST(Elementwise, ComparisonsWhereMaskedFill) {
  Tensor a = tensor({1.0, 5.0, 3.0});
  Tensor b = tensor({2.0, 5.0, 1.0});
  expect_values(ops::lt(a, b), {1, 0, 0});
  expect_values(ops::le(a, b), {1, 1, 0});
  expect_values(ops::gt(a, b), {0, 0, 1});
  expect_values(ops::ge(a, b), {0, 1, 1});
  expect_values(ops::eq(a, b), {0, 1, 0});
  expect_values(ops::ne(a, b), {1, 0, 1});
  EXPECT_EQ(ops::eq(a, b).dtype(), kBool);
  expect_values(ops::where(ops::gt(a, b), a, b), {2, 5, 3});
  expect_values(a.masked_fill(ops::gt(a, b), -1.0), {1, 5, -1});
  expect_values(ops::logical_not(ops::gt(a, b)), {1, 1, 0});
}

TEST(Elementwise, BadInputs) {
  Tensor f = zeros({2, 3});
  EXPECT_ERROR_WITH(f + zeros({4}), "add", "[2, 3]", "[4]", "broadcast");
  EXPECT_ERROR_WITH(f * zeros({2, 3}, kFloat64), "mul", "dtype mismatch", "float32", "float64");
  EXPECT_ERROR_WITH(ops::exp(arange(3, kInt64)), "exp", "floating", "int64");
  EXPECT_ERROR_WITH(ops::where(f, f, f), "where", "bool", "float32");
  EXPECT_ERROR_WITH(f.masked_fill(ones({2, 3}), 0.0), "masked_fill", "bool");
  EXPECT_ERROR_WITH(f.masked_fill(ops::gt(zeros({4, 2, 3}), zeros({1})), 0.0), "masked_fill", "[4, 2, 3]");
  EXPECT_ERROR_WITH(ops::clamp(f, 1.0, 0.0), "clamp", "greater than max");
  EXPECT_ERROR_WITH(ops::add(f, Tensor()), "add", "undefined");
}

// ---- gradchecks (float64, central differences) ----

TEST(ElementwiseGrad, Binary) {
  manual_seed(10);
  for (auto op : {ops::add, ops::sub, ops::mul}) {
    EXPECT_GRADCHECK([op](const V& in) { return op(in[0], in[1]); }, V{param({2, 3}), param({2, 3})});
  }
  EXPECT_GRADCHECK([](const V& in) { return ops::div(in[0], in[1]); },
                   V{param({2, 3}), param_uniform({2, 3}, 0.5, 2.0)});
  EXPECT_GRADCHECK([](const V& in) { return ops::pow(in[0], in[1]); },
                   V{param_uniform({4}, 0.5, 2.0), param({4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::pow(in[0], 3.0); }, V{param({5})});
  EXPECT_GRADCHECK([](const V& in) { return ops::pow(in[0], -1.5); }, V{param_uniform({5}, 0.5, 2.0)});
  EXPECT_GRADCHECK([](const V& in) { return ops::maximum(in[0], in[1]); }, V{param({6}), param({6})});
  EXPECT_GRADCHECK([](const V& in) { return ops::minimum(in[0], in[1]); }, V{param({6}), param({6})});
}

TEST(ElementwiseGrad, BroadcastingAndNonContiguous) {
  manual_seed(11);
  EXPECT_GRADCHECK([](const V& in) { return in[0] * in[1]; }, V{param({2, 3}), param({3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0] / in[1]; }, V{param({2, 1, 3}), param_uniform({4, 1}, 1, 2)});
  EXPECT_GRADCHECK([](const V& in) { return in[0] - in[1]; }, V{param({3, 1}), param({1, 4})});
  // Transposed and sliced inputs.
  EXPECT_GRADCHECK([](const V& in) { return in[0].t() * in[1]; }, V{param({3, 2}), param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return ops::tanh(in[0].slice(1, 0, 4, 2)) + in[1]; },
                   V{param({3, 4}), param({3, 2})});
  // Scalars on either side.
  EXPECT_GRADCHECK([](const V& in) { return 2.0 / in[0] + (in[0] - 1.0) * 3.0; }, V{param_uniform({4}, 0.5, 2)});
}

TEST(ElementwiseGrad, Unary) {
  manual_seed(12);
  const V pos{param_uniform({2, 3}, 0.3, 2.0)};
  const V any{param({2, 3})};
  EXPECT_GRADCHECK([](const V& in) { return ops::neg(in[0]); }, any);
  EXPECT_GRADCHECK([](const V& in) { return ops::exp(in[0]); }, any);
  EXPECT_GRADCHECK([](const V& in) { return ops::log(in[0]); }, pos);
  EXPECT_GRADCHECK([](const V& in) { return ops::sqrt(in[0]); }, pos);
  EXPECT_GRADCHECK([](const V& in) { return ops::rsqrt(in[0]); }, pos);
  EXPECT_GRADCHECK([](const V& in) { return ops::tanh(in[0]); }, any);
  EXPECT_GRADCHECK([](const V& in) { return ops::sigmoid(in[0]); }, any);
  EXPECT_GRADCHECK([](const V& in) { return ops::gelu(in[0]); }, any);
  EXPECT_GRADCHECK([](const V& in) { return ops::gelu(in[0], "tanh"); }, any);
}

TEST(ElementwiseGrad, KinkedOpsAwayFromKinks) {
  // Values kept away from 0 (relu, abs) and from the clamp bounds.
  Tensor x = tensor({-1.5, -0.3, 0.4, 1.2, 2.5, -2.2}, {2, 3}, TensorOptions(kFloat64).requires_grad(true));
  EXPECT_GRADCHECK([](const V& in) { return ops::relu(in[0]); }, V{x});
  // relu's fused backward is differentiable in the incoming gradient (double backward).
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::mul(ops::relu(in[0]), in[0]); }, V{x});
  EXPECT_GRADCHECK([](const V& in) { return ops::abs(in[0]); }, V{x});
  EXPECT_GRADCHECK([](const V& in) { return ops::clamp(in[0], -1.0, 1.0); }, V{x});
  Tensor y = tensor({0.5, 0.1, -0.2, 2.0, 1.0, 0.0}, {2, 3}, TensorOptions(kFloat64).requires_grad(true));
  EXPECT_GRADCHECK([](const V& in) { return ops::where(ops::gt(in[0], in[1]), in[0], in[1] * 2.0); }, V{x, y});
  EXPECT_GRADCHECK([](const V& in) { return in[0].masked_fill(ops::lt(in[0], ops::scalar_like(0.0, in[0])), 0.0); }, V{x});
}

TEST(ElementwiseGrad, SecondOrder) {
  manual_seed(13);
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::tanh(in[0]) * in[1]; }, V{param({3}), param({3})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::exp(in[0]) / in[1]; }, V{param({3}), param_uniform({3}, 1, 2)});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::sigmoid(in[0]) + ops::sqrt(in[1]); },
                       V{param({3}), param_uniform({3}, 1, 2)});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::pow(in[0], 3.0); }, V{param({3})});
}

TEST(ElementwiseGrad, GeluSecondOrderSaysNotImplemented) {
  Tensor x = param({3});
  Tensor g = autograd::grad({ops::gelu(x).sum()}, {x}, {}, false, true)[0];
  EXPECT_ERROR_WITH(g.sum().backward(), "gelu", "double backward");
}
