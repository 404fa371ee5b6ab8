// nn::ContextPool1d: parameters, causality (exactly, float64), residual, the support regulariser and
// the logged means; a gradcheck through the predictor.
#include <cmath>

#include "helpers/test_utils.h"
#include "nn/context_pool.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {
nn::ContextPool1dOptions options(bool causal, int64_t window = 4) {
  nn::ContextPool1dOptions o;
  o.pool.window = window;
  o.pool.causal = causal;
  return o;
}
}  // namespace

TEST(ContextPool1dModule, ParametersAndShapes) {
  nn::ContextPool1d cp(16, options(true));
  std::vector<std::string> names;
  for (auto& [name, p] : cp.named_parameters()) names.push_back(name + " " + shape_str(p.sizes()));
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight [4, 16, 3]", "conv1.bias [4]", "conv2.weight [2, 4, 3]",
                                             "conv2.bias [2]"}));
  EXPECT_TRUE(cp.forward(randn({2, 10, 16})).sizes() == (Shape{2, 10, 16}));
  nn::ContextPool1dOptions wide = options(true);
  wide.hidden = 7;
  EXPECT_EQ(nn::ContextPool1d(16, wide).conv1->out_channels, 7);
  EXPECT_ERROR_WITH(cp.forward(randn({2, 10, 8})), "ContextPool1d", "[B, N, 16]", "[2, 10, 8]");
  nn::ContextPool1dOptions bad = options(true);
  bad.pool.s_min = -1;
  EXPECT_ERROR_WITH(nn::ContextPool1d(16, bad), "context_pool1d", "s_min");
}

// Changing token j changes no output i < j, exactly; the bidirectional module does see the future.
TEST(ContextPool1dModule, CausalityIsExact) {
  manual_seed(11);
  for (bool causal : {true, false}) {
    nn::ContextPool1d cp(8, options(causal, 3), kFloat64);
    const Tensor x = randn({2, 12, 8}, kFloat64);
    const std::vector<double> before = cp.forward(x).to_vector<double>();
    for (int64_t j : {0, 5, 11}) {
      Tensor changed = x.clone();
      {
        autograd::NoGradGuard no_grad;
        changed.select(1, j).fill_(3.0);
      }
      const std::vector<double> after = cp.forward(changed).to_vector<double>();
      bool past_changed = false;
      for (int64_t bi = 0; bi < 2; ++bi)
        for (int64_t i = 0; i < j; ++i)
          for (int64_t e = 0; e < 8; ++e) {
            const size_t at = (bi * 12 + i) * 8 + e;
            past_changed |= before[at] != after[at];
          }
      EXPECT_EQ(past_changed, !causal && j > 0) << "causal " << causal << ", changed token " << j;
    }
  }
}

TEST(ContextPool1dModule, ResidualAddsTheInput) {
  manual_seed(12);
  nn::ContextPool1dOptions o = options(true);
  nn::ContextPool1d plain(8, o, kFloat64);
  o.residual = true;
  nn::ContextPool1d residual(8, o, kFloat64);
  residual.load_state_dict(plain.state_dict());
  const Tensor x = randn({1, 6, 8}, kFloat64);
  const Tensor diff = ops::sub(residual.forward(x), ops::add(plain.forward(x), x));
  EXPECT_EQ(ops::abs(diff).max().item(), 0.0);
}

TEST(ContextPool1dModule, RegulariserAndLoggedMeans) {
  manual_seed(13);
  nn::ContextPool1dOptions o = options(true, 8);  // s in [0.5, 4]
  EXPECT_TRUE(std::isnan(nn::ContextPool1d(8, o).mean_support()));
  EXPECT_FALSE(nn::ContextPool1d(8, o).auxiliary_loss().defined());  // lambda 0
  o.lambda = 0.5;
  nn::ContextPool1d cp(8, o, kFloat64);
  const Tensor x = randn({2, 6, 8}, kFloat64);
  cp.forward(x);
  const double s = cp.mean_support();
  EXPECT_GT(s, 0.5);
  EXPECT_LT(s, 4.0);
  EXPECT_GT(cp.mean_weight(), 0.0);
  EXPECT_LT(cp.mean_weight(), 1.0);
  const Tensor aux = cp.auxiliary_loss();
  EXPECT_NEAR(aux.item(), 0.5 * s, 1e-12);
  aux.backward();  // the regulariser trains the support head of the predictor
  EXPECT_GT(ops::abs(cp.conv2->weight.grad()).max().item(), 0.0);
  // The regulariser needs learned supports.
  o.pool.mode = ops::ContextPoolMode::WeightsOnly;
  EXPECT_ERROR_WITH(nn::ContextPool1d(8, o), "ContextPool1d", "lambda", "weights_only");  // s is not learned
  // uniform mode: weights are 1, support fixed at (s_min + s_max) / 2, and no predictor.
  o.lambda = 0.0;
  o.pool.mode = ops::ContextPoolMode::Uniform;
  nn::ContextPool1d uniform(8, o, kFloat64);
  EXPECT_EQ(uniform.num_parameters(), 0);  // nothing to predict
  uniform.forward(x);
  EXPECT_DOUBLE_EQ(uniform.mean_weight(), 1.0);
  EXPECT_NEAR(uniform.mean_support(), 2.25, 1e-12);
}

TEST(ContextPool1dModule, GradcheckThroughThePredictor) {
  manual_seed(14);
  auto cp = std::make_shared<nn::ContextPool1d>(4, options(true, 2), kFloat64);
  using V = std::vector<Tensor>;
  const Tensor w1 = cp->conv1->weight;
  EXPECT_GRADCHECK([cp](const V& in) { return cp->forward(in[0]); }, V{param({1, 6, 4})});
  EXPECT_GRADCHECK([cp](const V&) { return cp->forward(ones({1, 5, 4}, kFloat64)); }, V{w1});
}
