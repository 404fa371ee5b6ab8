// nn::Conv1d: shapes, parameter names and init, agreement with ops::conv1d, the causal helper.
#include <cmath>

#include "helpers/test_utils.h"
#include "nn/conv.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Conv1dModule, ShapesParametersAndInit) {
  manual_seed(4);
  nn::Conv1d conv(3, 5, 4, 1, 2, 2);
  auto named = conv.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(conv.weight.sizes(), (Shape{5, 3, 4}));
  EXPECT_EQ(conv.bias.sizes(), (Shape{5}));
  EXPECT_EQ(conv.weight.dtype(), kFloat32);
  EXPECT_TRUE(conv.weight.requires_grad() && conv.bias.requires_grad());
  EXPECT_EQ(conv.num_parameters(), 5 * 3 * 4 + 5);
  // L_out = 10 + 1 + 2 - 2 * 3 = 7.
  EXPECT_EQ(conv.forward(randn({2, 3, 10})).sizes(), (Shape{2, 5, 7}));
  EXPECT_ERROR_WITH(conv.forward(randn({2, 4, 10})), "Conv1d", "[2, 4, 10]", "[B, 3, L]");

  nn::Conv1d no_bias(3, 5, 4, 0, 0, 1, false, kFloat64);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.weight.dtype(), kFloat64);

  // U(-1/sqrt(in * k), 1/sqrt(in * k)): bound 1/sqrt(64 * 4) = 1/16, and the draws fill it.
  nn::Conv1d big(64, 32, 4);
  const double bound = 1.0 / 16.0;
  EXPECT_LE(big.weight.abs().max().item(), bound + 1e-7);
  EXPECT_GT(big.weight.abs().max().item(), 0.9 * bound);
  EXPECT_LE(big.bias.abs().max().item(), bound + 1e-7);

  EXPECT_ERROR_WITH(nn::Conv1d(0, 5, 3), "Conv1d", "in=0");
  EXPECT_ERROR_WITH(nn::Conv1d(3, 5, 3, -1), "Conv1d", "pad_left=-1");
  EXPECT_ERROR_WITH(nn::Conv1d(3, 5, 3, 0, 0, 0), "Conv1d", "dilation=0");
}

TEST(Conv1dModule, MatchesOpAndGradchecks) {
  manual_seed(5);
  auto conv = std::make_shared<nn::Conv1d>(2, 3, 3, 2, 1, 2, true, kFloat64);
  Tensor x = randn({2, 2, 6}, kFloat64);
  Tensor want = ops::conv1d(x, conv->weight, conv->bias, 2, 1, 2);
  expect_values(conv->forward(x), want.to_vector<double>(), 1e-12);
  EXPECT_GRADCHECK([conv](const V& in) { return conv->forward(in[0]); }, V{param({2, 2, 5})});
  // Gradients reach the registered parameters.
  ops::sum(conv->forward(x)).backward();
  ASSERT_TRUE(conv->weight.grad().defined() && conv->bias.grad().defined());
  EXPECT_EQ(conv->weight.grad().sizes(), conv->weight.sizes());
}

TEST(Conv1dModule, CausalKeepsLengthAndIgnoresTheFuture) {
  manual_seed(6);
  auto conv = nn::Conv1d::causal(2, 4, 3, 2, true, kFloat64);
  EXPECT_EQ(conv->pad_left, 4);
  EXPECT_EQ(conv->pad_right, 0);
  Tensor x = randn({1, 2, 9}, kFloat64);
  const Tensor y = conv->forward(x);
  ASSERT_EQ(y.sizes(), (Shape{1, 4, 9}));
  // Changing the last 4 positions leaves the first 5 outputs alone.
  Tensor bumped = x.clone();
  {
    NoGradGuard no_grad;
    bumped.narrow(2, 5, 4).fill_(7.0);
  }
  expect_values(conv->forward(bumped).narrow(2, 0, 5), y.narrow(2, 0, 5).to_vector<double>(), 0.0);
}
