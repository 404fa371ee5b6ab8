// nn::Conv2d: shapes, parameter names and init, options reaching ops::conv2d, gradients, the
// description line, and bad arguments.
#include <cmath>

#include "helpers/test_utils.h"
#include "nn/conv2d.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Conv2dModule, ShapesParametersAndInit) {
  manual_seed(4);
  nn::Conv2d conv(3, 8, 3, {.stride = {2, 2}, .padding = {1, 1}});
  auto named = conv.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(conv.weight.sizes(), (Shape{8, 3, 3, 3}));
  EXPECT_EQ(conv.bias.sizes(), (Shape{8}));
  EXPECT_EQ(conv.weight.dtype(), kFloat32);
  EXPECT_TRUE(conv.weight.requires_grad() && conv.bias.requires_grad());
  EXPECT_EQ(conv.num_parameters(), 8 * 3 * 3 * 3 + 8);
  // H_out = (28 + 2 - 2 - 1) / 2 + 1 = 14; W_out = (13 + 2 - 2 - 1) / 2 + 1 = 7.
  EXPECT_EQ(conv.forward(randn({2, 3, 28, 13})).sizes(), (Shape{2, 8, 14, 7}));
  EXPECT_ERROR_WITH(conv.forward(randn({2, 4, 10, 10})), "Conv2d", "[2, 4, 10, 10]", "[B, 3, H, W]");
  EXPECT_ERROR_WITH(conv.forward(randn({3, 10, 10})), "Conv2d", "[3, 10, 10]");

  nn::Conv2d depthwise(6, 12, {3, 1}, {.groups = 6, .bias = false, .dtype = kFloat64});
  EXPECT_EQ(depthwise.named_parameters().size(), 1u);
  EXPECT_FALSE(depthwise.bias.defined());
  EXPECT_EQ(depthwise.weight.sizes(), (Shape{12, 1, 3, 1}));
  EXPECT_EQ(depthwise.weight.dtype(), kFloat64);

  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in / groups * kh * kw = 64 / 4 * 4 * 4 = 256: bound 1/16.
  nn::Conv2d big(64, 32, 4, {.groups = 4});
  const double bound = 1.0 / 16.0;
  EXPECT_LE(big.weight.abs().max().item(), bound + 1e-7);
  EXPECT_GT(big.weight.abs().max().item(), 0.9 * bound);
  EXPECT_LE(big.bias.abs().max().item(), bound + 1e-7);
  EXPECT_GT(big.bias.abs().max().item(), 0.5 * bound);
}

TEST(Conv2dModule, MatchesOpAndGradchecks) {
  manual_seed(5);
  const nn::Conv2dOptions o{.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 1}, .groups = 2,
                            .dtype = kFloat64};
  auto conv = std::make_shared<nn::Conv2d>(4, 2, std::array<int64_t, 2>{3, 2}, o);
  Tensor x = randn({2, 4, 6, 5}, kFloat64);
  const Tensor want = ops::conv2d(x, conv->weight, conv->bias, o.stride, o.padding, o.dilation, o.groups);
  expect_values(conv->forward(x), want.to_vector<double>(), 1e-12);
  EXPECT_GRADCHECK([conv](const V& in) { return conv->forward(in[0]); }, V{param({1, 4, 5, 4})});
  // Gradients reach the registered parameters.
  ops::sum(conv->forward(x)).backward();
  ASSERT_TRUE(conv->weight.grad().defined() && conv->bias.grad().defined());
  EXPECT_EQ(conv->weight.grad().sizes(), conv->weight.sizes());
  EXPECT_EQ(conv->bias.grad().sizes(), conv->bias.sizes());
}

TEST(Conv2dModule, Describe) {
  EXPECT_EQ(nn::Conv2d(3, 16, 3).describe(), "Conv2d(3, 16, kernel_size=[3, 3])");
  EXPECT_EQ(nn::Conv2d(1, 64, 4, {.stride = {4, 4}}).describe(), "Conv2d(1, 64, kernel_size=[4, 4], stride=[4, 4])");
  EXPECT_EQ(nn::Conv2d(8, 8, {3, 1}, {.padding = {1, 0}, .dilation = {2, 1}, .groups = 8, .bias = false}).describe(),
            "Conv2d(8, 8, kernel_size=[3, 1], padding=[1, 0], dilation=[2, 1], groups=8, bias=false)");
}

TEST(Conv2dModule, RejectsBadArguments) {
  EXPECT_ERROR_WITH(nn::Conv2d(0, 5, 3), "Conv2d", "in=0");
  EXPECT_ERROR_WITH(nn::Conv2d(3, 5, {3, 0}), "Conv2d", "kernel_size=[3, 0]");
  EXPECT_ERROR_WITH(nn::Conv2d(3, 6, 3, {.groups = 2}), "Conv2d", "groups=2", "in=3");
  EXPECT_ERROR_WITH(nn::Conv2d(4, 6, 3, {.groups = 4}), "Conv2d", "groups=4", "out=6");
  EXPECT_ERROR_WITH(nn::Conv2d(3, 5, 3, {.stride = {0, 1}}), "Conv2d", "stride=[0, 1]");
  EXPECT_ERROR_WITH(nn::Conv2d(3, 5, 3, {.padding = {-1, 0}}), "Conv2d", "padding=[-1, 0]");
  EXPECT_ERROR_WITH(nn::Conv2d(3, 5, 3, {.dilation = {1, 0}}), "Conv2d", "dilation=[1, 0]");
}
