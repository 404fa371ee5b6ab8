#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(ShapeGrad, Views) {
  manual_seed(40);
  EXPECT_GRADCHECK([](const V& in) { return in[0].view({3, 2}) * 1.5; }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].t().reshape({6}).exp(); }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].permute({2, 0, 1}).tanh(); }, V{param({2, 3, 2})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].transpose(0, 1).sigmoid(); }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].narrow(1, 1, 2).exp(); }, V{param({2, 4})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].slice(0, 1, 5, 2) * 2.0; }, V{param({5, 2})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].select(1, 2).tanh(); }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].expand({3, 2, 4}).tanh(); }, V{param({2, 1})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].unsqueeze(1).squeeze(1).exp(); }, V{param({3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].flatten(0, 1).tanh(); }, V{param({2, 2, 2})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].t().contiguous() * 3.0; }, V{param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return in[0].clone().exp(); }, V{param({2, 3})});
  EXPECT_GRADGRADCHECK([](const V& in) { return in[0].slice(1, 0, 3, 2).exp(); }, V{param({2, 3})});
}

TEST(ShapeGrad, CatStackSplit) {
  manual_seed(41);
  EXPECT_GRADCHECK([](const V& in) { return ops::cat({in[0], in[1].tanh()}, 1); }, V{param({2, 3}), param({2, 2})});
  EXPECT_GRADCHECK([](const V& in) { return ops::stack({in[0], in[1]}, 2); }, V{param({2, 3}), param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) {
    auto parts = ops::split(in[0], 2, 1);
    return parts[0] * parts[1] + parts[2].sum();
  }, V{param({2, 5})});
  EXPECT_GRADCHECK([](const V& in) {
    auto parts = ops::chunk(in[0], 2, 0);
    return parts[0].exp() - parts[1];
  }, V{param({4, 2})});
}

TEST(ShapeGrad, DtypeConversionPassesGradient) {
  Tensor x = param({3});
  Tensor y = x.to(kFloat32).to(kFloat64);
  (y * 2.0).sum().backward();
  expect_values(x.grad(), {2, 2, 2});
  EXPECT_FALSE(x.to(kInt64).requires_grad());
}
