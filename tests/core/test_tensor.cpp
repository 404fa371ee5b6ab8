#include <cmath>
#include <sstream>

#include "core/parallel.h"
#include "core/random.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Tensor, FactoriesHaveShapeDtypeAndValues) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.sizes(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_TRUE(z.is_contiguous());
  expect_values(z, std::vector<double>(6, 0.0));
  expect_values(ones({3}, kFloat64), {1, 1, 1});
  expect_values(full({2}, 2.5), {2.5, 2.5});
  expect_values(arange(5, kInt64), {0, 1, 2, 3, 4});
  expect_values(arange(1.0, 2.0, 0.25), {1.0, 1.25, 1.5, 1.75});
  Tensor v = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  EXPECT_EQ(v.at({1, 2}), 6.0);
  EXPECT_EQ(scalar_tensor(7.0).dim(), 0);
  EXPECT_EQ(scalar_tensor(7.0).item(), 7.0);
}

TEST(Tensor, CopiesShareData) {
  Tensor a = zeros({3});
  Tensor b = a;
  b.fill_(4.0);
  EXPECT_EQ(a.at({1}), 4.0);
  EXPECT_TRUE(a.is_same(b));
  Tensor c = a.clone();
  c.fill_(1.0);
  EXPECT_EQ(a.at({1}), 4.0);
}

TEST(Tensor, BadFactoryInputsAreErrors) {
  EXPECT_ERROR_WITH(zeros({2, -1}), "zeros", "non-negative");
  EXPECT_ERROR_WITH(tensor({1.0, 2.0, 3.0}, {2, 2}), "3 values", "[2, 2]");
  EXPECT_ERROR_WITH(randn({2}, kInt64), "randn", "int64");
  EXPECT_ERROR_WITH(arange(0.0, 1.0, NAN), "arange", "finite");
  EXPECT_ERROR_WITH(ones({2, 2}).item(), "item", "[2, 2]");
  EXPECT_ERROR_WITH(ones({2}).at({2}), "at", "out of range");
  EXPECT_ERROR_WITH(Tensor().sizes(), "undefined");
  EXPECT_ERROR_WITH(arange(3, kInt64).requires_grad_(), "requires_grad_", "int64");
  EXPECT_ERROR_WITH(ones({2}).data_ptr<double>(), "data_ptr", "float32", "float64");
}

TEST(Tensor, EmptyTensorsWork) {
  Tensor e = zeros({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(ops::sum(e).item(), 0.0);
  EXPECT_EQ(ops::sum(e, {0}).sizes(), (Shape{3}));
  EXPECT_EQ(ops::add(e, ones({3})).sizes(), (Shape{0, 3}));
  EXPECT_EQ(ops::matmul(zeros({2, 0}), zeros({0, 4})).sizes(), (Shape{2, 4}));
  expect_values(ops::matmul(zeros({2, 0}), zeros({0, 2})), {0, 0, 0, 0});
  EXPECT_ERROR_WITH(ops::max(e), "max", "empty");
}

TEST(Random, SameSeedSameStreamAnyThreadCount) {
  manual_seed(42);
  const std::vector<double> a = randn({1000}, kFloat64).to_vector<double>();
  const int threads = get_num_threads();
  set_num_threads(1);
  manual_seed(42);
  const std::vector<double> b = randn({1000}, kFloat64).to_vector<double>();
  set_num_threads(threads);
  EXPECT_EQ(a, b);
  manual_seed(43);
  EXPECT_NE(a, randn({1000}, kFloat64).to_vector<double>());
}

TEST(Random, NormalAndUniformMoments) {
  manual_seed(0);
  Tensor n = randn({200000}, kFloat64);
  EXPECT_NEAR(ops::mean(n).item(), 0.0, 0.01);
  EXPECT_NEAR(ops::var(n, {0}).item(), 1.0, 0.02);
  Tensor u = rand({200000}, kFloat64);
  EXPECT_NEAR(ops::mean(u).item(), 0.5, 0.01);
  EXPECT_GE(ops::min(u).item(), 0.0);
  EXPECT_LT(ops::max(u).item(), 1.0);
}

TEST(Random, GeneratorStateRoundTrips) {
  manual_seed(5);
  randn({7});
  const uint64_t seed = default_generator().seed(), offset = default_generator().offset();
  const auto a = rand({16}).to_vector<float>();
  default_generator().set_state(seed, offset);
  EXPECT_EQ(a, rand({16}).to_vector<float>());
}

TEST(Tensor, PrintsLikePytorch) {
  std::ostringstream os;
  os << tensor({1.0, -2.5, 3.0, 4.0}, {2, 2});
  EXPECT_EQ(os.str(), "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])");
  std::ostringstream os2;
  os2 << tensor({1.0, 2.0}, TensorOptions(kFloat64).requires_grad(true));
  EXPECT_EQ(os2.str(), "tensor([1.0000, 2.0000], dtype=float64, requires_grad=True)");
  std::ostringstream os3;
  os3 << arange(3, kInt64);
  EXPECT_EQ(os3.str(), "tensor([0, 1, 2])");
  std::ostringstream os4;
  os4 << zeros({2000});
  EXPECT_NE(os4.str().find("..."), std::string::npos);
}
