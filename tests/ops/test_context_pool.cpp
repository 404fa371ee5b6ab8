// context_pool1d: the fused op against hand-computed values and the dense reference, float64
// gradchecks over windows, lengths, support ranges and modes, and bad options.
#include <cmath>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;
using ops::ContextPool1dOptions;
using ops::ContextPoolMode;

namespace {

ContextPool1dOptions make(int64_t window, bool causal, ContextPoolMode mode = ContextPoolMode::Full) {
  ContextPool1dOptions o;
  o.window = window;
  o.causal = causal;
  o.mode = mode;
  return o;
}

// Output and the three input gradients of `op` for a fixed upstream gradient (zeros where undefined).
template <typename Op>
V forward_backward(Op op, const V& in, const Tensor& upstream) {
  V leaves;
  for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_(true));
  Tensor y = op(leaves[0], leaves[1], leaves[2]);
  y.backward(upstream);
  V out{y.detach()};
  for (const Tensor& l : leaves) out.push_back(l.grad().defined() ? l.grad() : zeros_like(l));
  return out;
}

double max_diff(const Tensor& p, const Tensor& q) {
  return ops::max(ops::abs(ops::sub(p.to(kFloat64), q.to(kFloat64)))).item();
}

// Fused and reference agree on output and gradients.
void expect_matches_reference(const ContextPool1dOptions& o, int64_t batch, int64_t n, int64_t d, double tol = 1e-12) {
  const V in{randn({batch, n, d}, kFloat64), ops::mul(randn({batch, n}, kFloat64), scalar_tensor(1.5, kFloat64)),
             ops::mul(randn({batch, n}, kFloat64), scalar_tensor(1.5, kFloat64))};
  const Tensor up = randn({batch, n, d}, kFloat64);
  const V fused = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool1d(x, a, b, o); }, in, up);
  const V ref = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool1d_reference(x, a, b, o); },
                                 in, up);
  const char* names[] = {"y", "dx", "da", "db"};
  for (size_t t = 0; t < fused.size(); ++t)
    EXPECT_LE(max_diff(fused[t], ref[t]), tol) << names[t] << " (K " << o.window << ", causal " << o.causal
                                               << ", N " << n << ", mode " << to_string(o.mode) << ")";
}

}  // namespace

TEST(ContextPool1d, HandComputedValues) {
  // N = 3, d = 1, causal, K = 1, weights_only with a = 0 (w = 1/2), s_fixed = 1.
  ContextPool1dOptions o = make(1, true, ContextPoolMode::WeightsOnly);
  o.s_fixed = 1.0;
  o.eps = 0.0;
  const Tensor x = tensor({1.0, 2.0, 4.0}, {1, 3, 1}, kFloat64);
  const Tensor zero = zeros({1, 3}, kFloat64);
  const double g1 = std::exp(-0.5);  // neighbour at distance 1
  // y_0 = x_0; y_i = (g1 x_{i-1} + x_i) / (g1 + 1): equal weights cancel.
  expect_values(ops::context_pool1d(x, zero, zero, o), {1.0, (g1 * 1 + 2) / (g1 + 1), (g1 * 2 + 4) / (g1 + 1)}, 1e-12);
  // Bidirectional: the middle token sees both neighbours.
  o.causal = false;
  expect_values(ops::context_pool1d(x, zero, zero, o).select(1, 1), {(g1 * 1 + 2 + g1 * 4) / (2 * g1 + 1)}, 1e-12);
  // Learned weights: a token with weight ~0 is ignored by its neighbours.
  o.causal = true;
  const Tensor a = tensor({-60.0, 0.0, 0.0}, {1, 3}, kFloat64);
  EXPECT_NEAR(ops::context_pool1d(x, a, zero, o).at({0, 1, 0}), 2.0, 1e-12);
}

TEST(ContextPool1d, DefaultsAndSupport) {
  const ContextPool1dOptions o = ContextPool1dOptions{}.resolved();
  EXPECT_EQ(o.window, 16);
  EXPECT_TRUE(o.causal);
  EXPECT_DOUBLE_EQ(*o.s_max, 8.0);
  EXPECT_DOUBLE_EQ(*o.s_fixed, 4.25);
  EXPECT_DOUBLE_EQ(*make(0, true).resolved().s_max, 0.5);  // K / 2 below s_min: s_max = s_min
  const Tensor b = tensor({-40.0, 0.0, 40.0}, {1, 3}, kFloat64);
  expect_values(ops::context_pool1d_support(b, o), {0.5, 4.25, 8.0}, 1e-12);
  expect_values(ops::context_pool1d_support(b, make(16, true, ContextPoolMode::Uniform)), {4.25, 4.25, 4.25}, 1e-12);
  EXPECT_EQ(ops::context_pool_mode_from_string("weights_only"), ContextPoolMode::WeightsOnly);
  EXPECT_ERROR_WITH(ops::context_pool_mode_from_string("gaussian"), "context_pool", "gaussian", "full");
}

TEST(ContextPool1d, MatchesDenseReference) {
  manual_seed(1);
  for (bool causal : {true, false}) {
    for (ContextPoolMode mode : {ContextPoolMode::Full, ContextPoolMode::WeightsOnly, ContextPoolMode::Uniform}) {
      expect_matches_reference(make(3, causal, mode), 2, 9, 5);
      expect_matches_reference(make(16, causal, mode), 2, 5, 3);  // K > N
      expect_matches_reference(make(0, causal, mode), 1, 4, 2);   // only itself
      expect_matches_reference(make(2, causal, mode), 1, 1, 3);   // N = 1
    }
  }
}

TEST(ContextPool1d, Float32AgreesWithFloat64) {
  manual_seed(2);
  const ContextPool1dOptions o = make(4, true);
  const V in{randn({2, 12, 8}, kFloat64), randn({2, 12}, kFloat64), randn({2, 12}, kFloat64)};
  const Tensor up = randn({2, 12, 8}, kFloat64);
  auto op = [&](auto& x, auto& a, auto& b) { return ops::context_pool1d(x, a, b, o); };
  const V f64 = forward_backward(op, in, up);
  const V f32 = forward_backward(op, V{in[0].to(kFloat32), in[1].to(kFloat32), in[2].to(kFloat32)}, up.to(kFloat32));
  for (size_t t = 0; t < f64.size(); ++t) EXPECT_LE(max_diff(f64[t], f32[t]), 2e-5) << "tensor " << t;
}

TEST(ContextPool1d, SameResultForAnyThreadCount) {
  manual_seed(3);
  // 4 x 256 rows of 11 slots x 16 features: enough work that parallel_for really splits it.
  for (DType dtype : {kFloat32, kFloat64}) {
    const V in{randn({4, 256, 16}, dtype), randn({4, 256}, dtype), randn({4, 256}, dtype)};
    const Tensor up = randn({4, 256, 16}, dtype);
    auto op = [](auto& x, auto& a, auto& b) { return ops::context_pool1d(x, a, b, make(5, false)); };
    const int threads = get_num_threads();
    set_num_threads(1);
    const V one = forward_backward(op, in, up);
    set_num_threads(2);
    const V two = forward_backward(op, in, up);
    set_num_threads(threads);
    for (size_t t = 0; t < one.size(); ++t) EXPECT_EQ(one[t].to_vector<double>(), two[t].to_vector<double>());
  }
}

// eps = 0 and every weight of a window underflowing: the output is 0 (the limit eps -> 0+), and the
// gradients are finite (the backward never divides by Z or w).
TEST(ContextPool1d, UnderflowingWeightsStayFinite) {
  ContextPool1dOptions o = make(2, true);
  o.eps = 0.0;
  for (auto [dtype, logit] : {std::pair{kFloat64, -800.0}, std::pair{kFloat32, -105.0}}) {
    Tensor x = randn({1, 4, 3}, dtype).requires_grad_(true);
    Tensor a = full({1, 4}, logit, dtype).requires_grad_(true);
    Tensor b = zeros({1, 4}, dtype).requires_grad_(true);
    const Tensor y = ops::context_pool1d(x, a, b, o);
    y.sum().backward();
    for (const Tensor& t : {y.detach(), x.grad(), a.grad(), b.grad()}) {
      for (double v : t.to_vector<double>()) EXPECT_TRUE(std::isfinite(v)) << dtype;
    }
  }
}

// eps = 0 and weights so small that their sum is subnormal (sigmoid(-715) ~ 1e-311): the weights
// still normalise, so with every weight equal the output is the one for weights of 1/2 (1 / Z
// overflows to inf here: the op must divide by Z instead). A NaN weight reaches exactly the outputs
// whose window holds it.
TEST(ContextPool1d, SubnormalNormaliserStillNormalises) {
  manual_seed(6);
  for (bool causal : {true, false}) {
    ContextPool1dOptions o = make(2, causal);
    o.eps = 0.0;
    const Tensor x = randn({2, 6, 3}, kFloat64), b = randn({2, 6}, kFloat64);
    const Tensor tiny = ops::context_pool1d(x, full({2, 6}, -715.0, kFloat64), b, o);
    EXPECT_LE(max_diff(tiny, ops::context_pool1d(x, zeros({2, 6}, kFloat64), b, o)), 1e-9) << causal;

    Tensor a = zeros({2, 6}, kFloat64);
    a.data_ptr<double>()[2] = NAN;  // batch 0, position 2
    const Tensor y = ops::context_pool1d(x, a, b, o);
    for (int64_t i = 0; i < 6; ++i) {
      const bool holds = causal ? (i >= 2 && i <= 4) : std::abs(i - 2) <= 2;
      EXPECT_EQ(std::isnan(y.select(0, 0).select(0, i).sum().item()), holds) << "position " << i << ", causal " << causal;
      EXPECT_FALSE(std::isnan(y.select(0, 1).select(0, i).sum().item()));
    }
  }
}

TEST(ContextPool1dGrad, Gradchecks) {
  manual_seed(4);
  auto check = [](const ContextPool1dOptions& o, int64_t batch, int64_t n, int64_t d, double b_shift = 0.0) {
    Tensor b = ops::add(randn({batch, n}, kFloat64), scalar_tensor(b_shift, kFloat64)).detach();
    EXPECT_GRADCHECK([o](const V& in) { return ops::context_pool1d(in[0], in[1], in[2], o); },
                     V{param({batch, n, d}), param({batch, n}), b.requires_grad_(true)});
  };
  for (bool causal : {true, false}) {
    check(make(2, causal), 2, 7, 3);                                  // both sequence ends inside one window
    check(make(16, causal), 1, 5, 2);                                 // K larger than N
    check(make(3, causal), 2, 1, 3);                                  // N = 1
    check(make(3, causal), 1, 6, 2, -6.0);                            // s near s_min
    check(make(3, causal), 1, 6, 2, +6.0);                            // s near s_max
    check(make(3, causal, ContextPoolMode::WeightsOnly), 1, 6, 3);
    check(make(3, causal, ContextPoolMode::Uniform), 1, 6, 3);
    ContextPool1dOptions equal = make(4, causal);
    equal.s_min = 1.5;
    equal.s_max = 1.5;                                                // s_min = s_max: b has no effect
    check(equal, 1, 6, 2);
    ContextPool1dOptions wide = make(3, causal);
    wide.s_min = 0.8;
    wide.s_max = 5.0;
    wide.eps = 0.1;                                                   // a large eps matters in the formula
    check(wide, 1, 6, 2);
  }
}

TEST(ContextPool1dGrad, ModesGiveZeroGradientsToWhatTheyDoNotLearn) {
  manual_seed(5);
  const Tensor x = randn({1, 6, 3}, kFloat64);
  for (ContextPoolMode mode : {ContextPoolMode::WeightsOnly, ContextPoolMode::Uniform}) {
    Tensor a = randn({1, 6}, kFloat64).requires_grad_(true), b = randn({1, 6}, kFloat64).requires_grad_(true);
    ops::context_pool1d(x, a, b, make(2, true, mode)).sum().backward();
    ASSERT_TRUE(b.grad().defined());
    EXPECT_EQ(ops::abs(b.grad()).max().item(), 0.0);
    if (mode == ContextPoolMode::Uniform) EXPECT_EQ(ops::abs(a.grad()).max().item(), 0.0);
    else EXPECT_GT(ops::abs(a.grad()).max().item(), 0.0);
  }
}

TEST(ContextPool1dGrad, DoubleBackwardIsAClearError) {
  const Tensor x = randn({1, 4, 2}, TensorOptions(kFloat64).requires_grad(true));
  const Tensor a = randn({1, 4}, kFloat64), b = randn({1, 4}, kFloat64);
  const Tensor y = ops::context_pool1d(x, a, b).sum();
  EXPECT_ERROR_WITH(autograd::grad({y}, {x}, {}, false, true), "context_pool1d", "second derivatives",
                    "context_pool1d_reference");
  // The reference differentiates twice.
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::context_pool1d_reference(in[0], in[1], in[2], make(2, true)); },
                       V{param({1, 4, 2}), param({1, 4}), param({1, 4})});
}

TEST(ContextPool1d, BadInputs) {
  const Tensor x = zeros({2, 5, 4}), ab = zeros({2, 5});
  ContextPool1dOptions o;
  o.window = -1;
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, ab, o), "context_pool1d", "window", "-1");
  o = {};
  o.s_min = 0.0;
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, ab, o), "context_pool1d", "s_min", "positive");
  o = {};
  o.s_min = 2.0;
  o.s_max = 1.0;
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, ab, o), "context_pool1d", "s_max", ">= s_min");
  o = {};
  o.eps = NAN;
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, ab, o), "context_pool1d", "eps");
  o = {};
  o.s_fixed = -1.0;
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, ab, o), "context_pool1d", "s_fixed");
  EXPECT_ERROR_WITH(ops::context_pool1d(zeros({5, 4}), ab, ab), "context_pool1d", "[B, N, d]", "[5, 4]");
  EXPECT_ERROR_WITH(ops::context_pool1d(x, zeros({2, 4}), ab), "context_pool1d", "[2, 4]", "[2, 5]");
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab, zeros({2, 5, 1})), "context_pool1d", "[2, 5, 1]");
  EXPECT_ERROR_WITH(ops::context_pool1d(x, ab.to(kFloat64), ab), "context_pool1d", "dtype", "float64");
  EXPECT_ERROR_WITH(ops::context_pool1d(zeros({2, 5, 4}, kInt64), ab, ab), "context_pool1d", "floating");
}

TEST(ContextPool1d, EmptyBatchSequenceAndFeatures) {
  EXPECT_TRUE(ops::context_pool1d(zeros({2, 0, 4}), zeros({2, 0}), zeros({2, 0})).sizes() == (Shape{2, 0, 4}));
  EXPECT_TRUE(ops::context_pool1d(zeros({0, 5, 4}), zeros({0, 5}), zeros({0, 5})).sizes() == (Shape{0, 5, 4}));
  EXPECT_TRUE(ops::context_pool1d(zeros({2, 5, 0}), zeros({2, 5}), zeros({2, 5})).sizes() == (Shape{2, 5, 0}));
}
