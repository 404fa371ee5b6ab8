#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Shape, Broadcasting) {
  EXPECT_EQ(broadcast_shapes({2, 1, 3}, {4, 1}, "t"), (Shape{2, 4, 3}));
  EXPECT_EQ(broadcast_shapes({}, {5}, "t"), (Shape{5}));
  EXPECT_ERROR_WITH(broadcast_shapes({2, 3}, {4}, "add"), "add", "[2, 3]", "[4]", "broadcast");
}

TEST(Shape, WrapDim) {
  EXPECT_EQ(wrap_dim(-1, 3, "t"), 2);
  EXPECT_ERROR_WITH(wrap_dim(3, 3, "sum"), "sum", "dim 3", "out of range");
}

TEST(Views, ShareStorageAndSeeWrites) {
  Tensor a = arange(6.0, 0.0, -1.0, kFloat64).reshape({2, 3});  // [[6,5,4],[3,2,1]]
  Tensor t = a.t();
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.at({2, 1}), 1.0);
  Tensor row = a.select(0, 1);
  expect_values(row, {3, 2, 1});
  {
    NoGradGuard g;
    row.fill_(0.0);
  }
  expect_values(a, {6, 5, 4, 0, 0, 0});
  EXPECT_EQ(a.version(), row.version());
  expect_values(a.slice(1, 0, 3, 2), {6, 4, 0, 0});
  expect_values(a.narrow(1, 1, 2), {5, 4, 0, 0});
  expect_values(a.unsqueeze(0).squeeze(0), {6, 5, 4, 0, 0, 0});
  expect_values(tensor({1.0, 2.0}).expand({3, 2}), {1, 2, 1, 2, 1, 2});
  expect_values(a.permute({1, 0}).contiguous(), {6, 0, 5, 0, 4, 0});
  EXPECT_EQ(a.flatten().sizes(), (Shape{6}));
  EXPECT_EQ(a.view({3, -1}).sizes(), (Shape{3, 2}));
}

TEST(Views, ViewNeedsCompatibleStrides) {
  Tensor a = zeros({2, 3}).t();
  EXPECT_ERROR_WITH(a.view({6}), "view", "[3, 2]", "reshape");
  EXPECT_EQ(a.reshape({6}).sizes(), (Shape{6}));  // reshape copies instead
  EXPECT_ERROR_WITH(zeros({2, 3}).view({4, -1}), "view", "[4, -1]", "invalid");
  EXPECT_ERROR_WITH(zeros({2, 3}).view({-1, -1}), "only one dimension can be -1");
  EXPECT_ERROR_WITH(zeros({2, 3}).permute({0, 0}), "permute", "twice");
  EXPECT_ERROR_WITH(zeros({2, 3}).expand({4, 3}), "expand", "[2, 3]", "[4, 3]");
  EXPECT_ERROR_WITH(zeros({2, 3}).narrow(1, 2, 2), "narrow", "exceeds");
  EXPECT_ERROR_WITH(zeros({2, 3}).select(0, 5), "select", "out of range");
  EXPECT_ERROR_WITH(zeros({2, 3}).transpose(0, 2), "transpose", "out of range");
}

TEST(Views, ContiguousCopiesOnlyWhenNeeded) {
  Tensor a = randn({3, 4});
  EXPECT_TRUE(a.contiguous().is_same(a));
  Tensor t = a.t().contiguous();
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.at({1, 2}), a.at({2, 1}));
}

TEST(Concat, CatStackSplitChunk) {
  Tensor a = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  Tensor b = tensor({5.0, 6.0}, {1, 2});
  expect_values(ops::cat({a, b}, 0), {1, 2, 3, 4, 5, 6});
  expect_values(ops::cat({a, a}, 1), {1, 2, 1, 2, 3, 4, 3, 4});
  EXPECT_EQ(ops::stack({a, a}, 1).sizes(), (Shape{2, 2, 2}));
  auto parts = ops::split(arange(5), 2);
  ASSERT_EQ(parts.size(), 3u);
  expect_values(parts[2], {4});
  auto chunks = ops::chunk(arange(6), 3);
  ASSERT_EQ(chunks.size(), 3u);
  expect_values(chunks[1], {2, 3});
  EXPECT_ERROR_WITH(ops::cat({a, b}, 1), "cat", "[1, 2]", "[2, 2]");
  EXPECT_ERROR_WITH(ops::cat({a, a.to(kFloat64)}, 0), "cat", "dtype", "float32", "float64");
  EXPECT_ERROR_WITH(ops::stack({a, b}), "stack", "[1, 2]");
  EXPECT_ERROR_WITH(ops::split(arange(5), std::vector<int64_t>{2, 2}, 0), "split", "add up to 4");
}

TEST(Convert, DtypeConversion) {
  Tensor a = tensor({1.7, -2.2});
  expect_values(a.to(kInt64), {1, -2});
  expect_values(a.to(kFloat64), {1.7, -2.2}, 1e-6);
  EXPECT_EQ(a.to(kFloat32).is_same(a), true);
}
