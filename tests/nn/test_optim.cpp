#include <cmath>

#include "helpers/test_utils.h"
#include "nn/optim/adamw.h"
#include "nn/optim/schedule.h"
#include "nn/optim/sgd.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using namespace ctxpool::nn::optim;

namespace {
Tensor leaf(std::vector<double> v) { return tensor(v, {static_cast<int64_t>(v.size())}, TensorOptions(kFloat64).requires_grad(true)); }
void set_grad(Tensor& p, std::vector<double> g) { p.set_grad(tensor(g, {static_cast<int64_t>(g.size())}, kFloat64)); }
}  // namespace

TEST(SGD, PlainMomentumNesterovWeightDecay) {
  Tensor p = leaf({1.0, -2.0});
  SGD plain({p}, SGDOptions{0.1});
  set_grad(p, {0.5, 1.0});
  plain.step();
  expect_values(p, {1.0 - 0.05, -2.0 - 0.1}, 1e-15);

  // momentum 0.9: b1 = g1, b2 = 0.9 b1 + g2
  Tensor q = leaf({1.0});
  SGD mom({q}, SGDOptions{0.1, 0.9});
  set_grad(q, {1.0});
  mom.step();  // q = 1 - 0.1 * 1
  set_grad(q, {2.0});
  mom.step();  // b = 0.9 + 2 = 2.9; q = 0.9 - 0.29
  expect_values(q, {0.61}, 1e-15);

  // nesterov: update with g + mu * b
  Tensor r = leaf({1.0});
  SGD nest({r}, SGDOptions{0.1, 0.9, true});
  set_grad(r, {1.0});
  nest.step();  // b = 1; step = 1 + 0.9 = 1.9
  expect_values(r, {1.0 - 0.19}, 1e-15);

  // L2 weight decay is added to the gradient.
  Tensor w = leaf({2.0});
  SGD wd({w}, SGDOptions{0.1, 0.0, false, 0.5});
  set_grad(w, {1.0});
  wd.step();  // g = 1 + 0.5 * 2 = 2
  expect_values(w, {1.8}, 1e-15);
  EXPECT_ERROR_WITH(SGD({w}, SGDOptions{0.1, 0.0, true}), "SGD", "nesterov");
}

TEST(AdamW, MatchesHandComputedSteps) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  Tensor p = leaf({1.0, -0.5});
  AdamW opt({p}, AdamWOptions{lr, b1, b2, eps, wd});
  std::vector<double> w{1.0, -0.5}, m{0, 0}, v{0, 0};
  const std::vector<std::vector<double>> grads{{0.3, -1.0}, {0.1, 0.2}, {-0.4, 0.0}};
  for (int t = 1; t <= 3; ++t) {
    set_grad(p, grads[t - 1]);
    opt.step();
    for (int i = 0; i < 2; ++i) {
      const double g = grads[t - 1][i];
      w[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, t)), vhat = v[i] / (1 - std::pow(b2, t));
      w[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
    expect_values(p, w, 1e-12);
  }
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(AdamW, GroupsSkipParamsWithoutGradAndStateRoundTrips) {
  Tensor a = leaf({1.0}), b = leaf({2.0});
  AdamW opt(std::vector<ParamGroup>{{{a}, 0.1, 0.0}, {{b}, 0.1, 0.5}}, AdamWOptions{});
  set_grad(a, {1.0});
  opt.step();
  EXPECT_EQ(b.at({0}), 2.0);  // no grad: untouched (not even decayed)
  auto state = opt.state_tensors();
  EXPECT_TRUE(state.count("0.0.exp_avg") && state.count("0.0.exp_avg_sq") && state.count("0.0.step"));
  EXPECT_FALSE(state.count("1.0.exp_avg"));
  // A second optimizer restored from the state continues identically.
  Tensor a2 = leaf({a.at({0})});
  AdamW opt2(std::vector<ParamGroup>{{{a2}, 0.1, 0.0}, {{leaf({2.0})}, 0.1, 0.5}}, AdamWOptions{});
  opt2.load_state_tensors(state);
  set_grad(a, {0.3});
  set_grad(a2, {0.3});
  opt.step();
  opt2.step();
  EXPECT_EQ(a.at({0}), a2.at({0}));
}

TEST(Schedule, WarmupThenCosineToTenPercent) {
  WarmupCosine s{2e-3, 20, 1500, 0.1};
  EXPECT_DOUBLE_EQ(s(0), 1e-4);
  EXPECT_DOUBLE_EQ(s(19), 2e-3);
  EXPECT_DOUBLE_EQ(s(20), 2e-3);
  EXPECT_NEAR(s(1499), 2e-4, 1e-15);
  EXPECT_NEAR(s(20 + 1479 / 2.0), 1.1e-3, 2e-6);  // halfway down the cosine
  for (int64_t i = 21; i < 1500; ++i) EXPECT_LE(s(i), s(i - 1));
}

TEST(ClipGradNorm, ScalesToTheMaximum) {
  Tensor a = leaf({0, 0}), b = leaf({0});
  set_grad(a, {3.0, 0.0});
  set_grad(b, {4.0});
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-12);
  expect_values(a.grad(), {0.6, 0.0}, 1e-6);
  expect_values(b.grad(), {0.8}, 1e-6);
  EXPECT_NEAR(grad_norm({a, b}), 1.0, 1e-5);
  EXPECT_NEAR(clip_grad_norm({a, b}, 10.0), 1.0, 1e-5);  // below the limit: unchanged
  expect_values(b.grad(), {0.8}, 1e-6);
}

TEST(AdamW, BiasCorrectionCountsEachParametersOwnSteps) {
  // b gets its first gradient at the second step: its update is a first Adam step (t = 1).
  Tensor a = leaf({1.0}), b = leaf({1.0}), fresh = leaf({1.0});
  AdamW opt({a, b}, AdamWOptions{0.1, 0.9, 0.99, 1e-8, 0.0});
  set_grad(a, {1.0});
  opt.step();
  set_grad(a, {1.0});
  set_grad(b, {0.5});
  opt.step();
  AdamW first({fresh}, AdamWOptions{0.1, 0.9, 0.99, 1e-8, 0.0});
  set_grad(fresh, {0.5});
  first.step();
  EXPECT_EQ(b.at({0}), fresh.at({0}));
}

TEST(AdamW, LoadingMismatchedStateIsAnError) {
  Tensor p = leaf({1.0, 2.0, 3.0});
  AdamW opt({p}, AdamWOptions{});
  std::map<std::string, Tensor> state{{"0.0.exp_avg", zeros({10}, kFloat64)}, {"0.0.exp_avg_sq", zeros({10}, kFloat64)}};
  EXPECT_ERROR_WITH(opt.load_state_tensors(state), "optimizer", "0.0.exp_avg", "[10]", "[3]");
}
