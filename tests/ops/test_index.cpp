#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Embedding, LooksUpRowsAndScatterAddsGrads) {
  Tensor w = tensor({0.0, 1.0, 10.0, 11.0, 20.0, 21.0}, {3, 2}, TensorOptions(kFloat64).requires_grad(true));
  Tensor idx = tensor({2.0, 0.0, 2.0}, {3}, kInt64);
  Tensor e = ops::embedding(w, idx);
  expect_values(e, {20, 21, 0, 1, 20, 21});
  e.sum().backward();
  expect_values(w.grad(), {1, 1, 0, 0, 2, 2});  // row 2 used twice
  EXPECT_EQ(ops::embedding(w, idx.reshape({3, 1})).sizes(), (Shape{3, 1, 2}));
}

TEST(Embedding, BadInputs) {
  Tensor w = zeros({3, 2});
  EXPECT_ERROR_WITH(ops::embedding(w, tensor({3.0}, kInt64)), "embedding", "index 3", "size 3");
  EXPECT_ERROR_WITH(ops::embedding(w, tensor({-1.0}, kInt64)), "embedding", "index -1");
  EXPECT_ERROR_WITH(ops::embedding(w, tensor({1.0})), "embedding", "int64", "float32");
  EXPECT_ERROR_WITH(ops::embedding(zeros({3}), tensor({1.0}, kInt64)), "embedding", "2-D", "[3]");
}

TEST(GatherScatter, Values) {
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  Tensor idx = tensor({2.0, 0.0, 1.0, 1.0}, {2, 2}, kInt64);
  expect_values(ops::gather(x, 1, idx), {3, 1, 5, 5});
  Tensor s = ops::scatter_add(zeros({2, 3}), 1, idx, ones({2, 2}));
  expect_values(s, {1, 0, 1, 0, 2, 0});
  expect_values(ops::one_hot(tensor({0.0, 2.0}, kInt64), 3), {1, 0, 0, 0, 0, 1});
  EXPECT_ERROR_WITH(ops::gather(x, 1, tensor({3.0, 0.0}, {2, 1}, kInt64)), "gather", "index 3");
  EXPECT_ERROR_WITH(ops::gather(x, 1, tensor({1.0}, kInt64)), "gather", "as many dims");
  EXPECT_ERROR_WITH(ops::gather(x, 2, idx), "gather", "out of range");
  EXPECT_ERROR_WITH(ops::one_hot(tensor({3.0}, kInt64), 3), "one_hot", "index 3", "size 3");
}

TEST(IndexGrad, Gradchecks) {
  manual_seed(60);
  Tensor idx = tensor({1.0, 3.0, 1.0, 0.0}, {2, 2}, kInt64);
  EXPECT_GRADCHECK([idx](const V& in) { return ops::embedding(in[0], idx).tanh(); }, V{param({4, 3})});
  EXPECT_GRADGRADCHECK([idx](const V& in) { return ops::embedding(in[0], idx) * ops::embedding(in[0], idx); },
                       V{param({4, 2})});
  Tensor gidx = tensor({2.0, 0.0, 1.0, 1.0}, {2, 2}, kInt64);
  EXPECT_GRADCHECK([gidx](const V& in) { return ops::gather(in[0], 1, gidx); }, V{param({2, 3})});
  EXPECT_GRADCHECK([gidx](const V& in) { return ops::scatter_add(in[0], 1, gidx, in[1]); },
                   V{param({2, 3}), param({2, 2})});
  EXPECT_GRADGRADCHECK([gidx](const V& in) { return ops::gather(in[0] * in[0], 1, gidx); }, V{param({2, 3})});
}
