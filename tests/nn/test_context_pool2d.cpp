// ContextPool2d and PatchEmbedding: shapes in both layouts, strided downsampling, gradients reaching
// the input and the predictor, modes, the regulariser, and bad options.
#include "helpers/test_utils.h"
#include "nn/context_pool2d.h"
#include "nn/patch_embedding.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

namespace {
nn::ContextPool2dOptions options(int64_t window, int64_t stride,
                                 ops::ContextPoolMode mode = ops::ContextPoolMode::Full) {
  nn::ContextPool2dOptions o;
  o.pool.window = window;
  o.pool.stride = stride;
  o.pool.mode = mode;
  return o;
}
}  // namespace

TEST(ContextPool2dModule, ShapesInBothLayouts) {
  manual_seed(0);
  nn::ContextPool2d same(8, options(1, 1)), down(8, options(1, 2));
  EXPECT_EQ(same.forward(randn({2, 5, 6, 8})).sizes(), (Shape{2, 5, 6, 8}));
  EXPECT_EQ(down.forward(randn({2, 5, 6, 8})).sizes(), (Shape{2, 3, 3, 8}));
  EXPECT_EQ(down.forward_nchw(randn({2, 8, 5, 6})).sizes(), (Shape{2, 8, 3, 3}));
  EXPECT_EQ(same.conv1->out_channels, 2);  // hidden = d / 4
  EXPECT_EQ(same.conv2->out_channels, 2);
  EXPECT_GT(same.mean_support(), 0.5 - 1e-9);
  EXPECT_LT(same.mean_weight(), 1.0);
  // The NCHW path is the channels-last one, transposed.
  const Tensor x = randn({1, 8, 4, 4});
  const Tensor via_nchw = down.forward_nchw(x);
  const Tensor via_nhwc = ops::permute(down.forward(ops::permute(x, {0, 2, 3, 1})), {0, 3, 1, 2});
  expect_values(via_nchw, via_nhwc.contiguous().to_vector<double>(), 0.0);
}

TEST(ContextPool2dModule, GradientsReachInputAndPredictor) {
  manual_seed(1);
  nn::ContextPool2d pool(4, options(1, 2), kFloat64);
  Tensor x = randn({2, 5, 5, 4}, TensorOptions(kFloat64).requires_grad(true));
  EXPECT_GRADCHECK([&](const V& v) { return pool.forward(v[0]); }, {x});
  ops::sum(ops::mul(pool.forward(x), pool.forward(x))).backward();
  for (const auto& [name, p] : pool.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(ops::sum(ops::abs(p.grad())).item(), 0.0) << name;
  }
}

TEST(ContextPool2dModule, ModesRegulariserAndErrors) {
  manual_seed(2);
  nn::ContextPool2d uniform(4, options(1, 1, ops::ContextPoolMode::Uniform));
  EXPECT_TRUE(uniform.parameters().empty());  // nothing to predict
  EXPECT_EQ(uniform.forward(randn({1, 3, 3, 4})).sizes(), (Shape{1, 3, 3, 4}));
  EXPECT_DOUBLE_EQ(uniform.mean_weight(), 1.0);
  nn::ContextPool2dOptions reg = options(1, 1);
  reg.lambda = 0.1;
  reg.residual = true;
  nn::ContextPool2d pool(4, reg);
  pool.forward(randn({1, 3, 3, 4}));
  ASSERT_TRUE(pool.auxiliary_loss().defined());
  EXPECT_NEAR(pool.auxiliary_loss().item(), 0.1 * pool.mean_support(), 1e-6);
  nn::ContextPool2dOptions bad = options(1, 2);
  bad.residual = true;
  EXPECT_ERROR_WITH(nn::ContextPool2d(4, bad), "ContextPool2d", "residual needs stride 1");
  EXPECT_ERROR_WITH(pool.forward(randn({1, 4, 3, 3})), "ContextPool2d", "[B, H, W, 4]", "forward_nchw");
}

TEST(PatchEmbedding, CutsImagesIntoTokens) {
  manual_seed(3);
  nn::PatchEmbedding embed(1, 16, 4);
  EXPECT_EQ(embed.forward(randn({2, 1, 28, 28})).sizes(), (Shape{2, 7, 7, 16}));
  EXPECT_ERROR_WITH(embed.forward(randn({2, 1, 30, 28})), "PatchEmbedding", "30x28", "4x4");
  // Token (i, j) depends on its own patch only.
  Tensor img = randn({1, 1, 8, 8});
  const Tensor before = embed.forward(img);
  Tensor changed = img.clone();
  changed.slice(2, 4, 8).slice(3, 0, 4).fill_(5.0);  // patch (1, 0)
  const Tensor after = embed.forward(changed);
  const Tensor diff = ops::sum(ops::abs(ops::sub(after, before)), {3});  // [1, 2, 2]
  expect_values(ops::gt(diff, scalar_tensor(1e-6, kFloat32)).to(kFloat32), {0, 0, 1, 0});
}
