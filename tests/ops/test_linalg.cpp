#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Matmul, ValuesFor1DTo3D) {
  Tensor a = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, kFloat64);
  Tensor b = tensor({1.0, 0.0, -1.0, 2.0, 0.5, 1.0}, {3, 2}, kFloat64);
  expect_values(ops::matmul(a, b), {0.5, 7.0, 2.0, 16.0});
  Tensor v = tensor({1.0, 1.0, 1.0}, kFloat64);
  expect_values(ops::matmul(a, v), {6, 15});                            // [2,3] @ [3]
  expect_values(ops::matmul(tensor({1.0, -1.0}, kFloat64), a), {-3, -3, -3});  // [2] @ [2,3]
  EXPECT_EQ(ops::matmul(v, v).dim(), 0);
  EXPECT_EQ(ops::matmul(v, v).item(), 3.0);
  // Transposed operands go to BLAS without a copy and give the same answer.
  expect_values(ops::matmul(b.t(), a.t()), {0.5, 2.0, 7.0, 16.0});
  // Batched with broadcasting: [2,1,2,3] @ [4,3,2] -> [2,4,2,2]
  Tensor ba = ops::stack({a, a * 2.0}).unsqueeze(1);
  Tensor bb = ops::stack({b, b, b, b});
  Tensor c = ops::matmul(ba, bb);
  EXPECT_EQ(c.sizes(), (Shape{2, 4, 2, 2}));
  expect_values(c.select(0, 1).select(0, 3), {1, 14, 4, 32});
}

TEST(Matmul, Float32MatchesFloat64) {
  manual_seed(4);
  Tensor a = randn({37, 53}, kFloat64), b = randn({53, 29}, kFloat64);
  const auto want = ops::matmul(a, b).to_vector<double>();
  const auto got = ops::matmul(a.to(kFloat32), b.to(kFloat32)).to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4 * (1 + std::abs(want[i])));
}

TEST(Matmul, BadInputs) {
  EXPECT_ERROR_WITH(ops::matmul(zeros({32, 128}), zeros({64, 10})), "matmul: cannot multiply [32, 128] by [64, 10]",
                    "inner sizes differ (128 vs 64)");
  EXPECT_ERROR_WITH(ops::matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), "matmul", "[2]", "[3]", "broadcast");
  EXPECT_ERROR_WITH(ops::matmul(zeros({2, 2}), zeros({2, 2}, kFloat64)), "matmul", "dtype mismatch");
  EXPECT_ERROR_WITH(ops::matmul(scalar_tensor(1.0), zeros({2})), "matmul", "at least 1 dim");
  EXPECT_ERROR_WITH(ops::matmul(arange(4, kInt64).reshape({2, 2}), arange(4, kInt64).reshape({2, 2})),
                    "matmul", "floating");
}

TEST(MatmulGrad, AllShapes) {
  manual_seed(30);
  auto mm = [](const V& in) { return ops::matmul(in[0], in[1]); };
  EXPECT_GRADCHECK(mm, V{param({2, 3}), param({3, 4})});
  EXPECT_GRADCHECK(mm, V{param({3}), param({3, 2})});
  EXPECT_GRADCHECK(mm, V{param({2, 3}), param({3})});
  EXPECT_GRADCHECK(mm, V{param({3}), param({3})});
  EXPECT_GRADCHECK(mm, V{param({2, 2, 3}), param({3, 2})});     // batch broadcast on one side
  EXPECT_GRADCHECK(mm, V{param({2, 1, 2, 3}), param({3, 3, 2})});  // on both sides
  EXPECT_GRADCHECK([](const V& in) { return ops::matmul(in[0].t(), in[1].transpose(0, 1)); },
                   V{param({3, 2}), param({4, 3})});
  EXPECT_GRADGRADCHECK(mm, V{param({2, 3}), param({3, 2})});
}
