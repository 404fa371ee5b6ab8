// batch_norm (ops/batch_norm.cpp): training and evaluation values against a per-channel loop, the
// running statistics' update, first and second derivatives, and the errors for bad inputs.
// Agreement with PyTorch is in test_golden.cpp (tests/golden/batch_norm.safetensors).
#include <cmath>

#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

namespace {

// Mean and biased variance of channel c of x [B, C, L] (contiguous), the plain way.
std::pair<double, double> channel_stats(const Tensor& x, int64_t c) {
  const int64_t batch = x.sizes()[0], length = x.sizes()[2];
  double total = 0, squares = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t l = 0; l < length; ++l) total += x.at({b, c, l});
  const double mean = total / static_cast<double>(batch * length);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t l = 0; l < length; ++l) squares += std::pow(x.at({b, c, l}) - mean, 2);
  return {mean, squares / static_cast<double>(batch * length)};
}

}  // namespace

TEST(BatchNorm, TrainingNormalisesPerChannelAndUpdatesRunningStats) {
  manual_seed(20);
  const Tensor x = ops::add(randn({4, 3, 5}, kFloat64), tensor({1.0, -2.0, 0.5}, {3, 1}, kFloat64));
  const Tensor weight = tensor({1.5, 0.5, -1.0}, kFloat64), bias = tensor({0.0, 1.0, 2.0}, kFloat64);
  const Tensor running_mean = tensor({0.5, 0.0, -1.0}, kFloat64), running_var = tensor({2.0, 1.0, 0.5}, kFloat64);
  const double eps = 1e-5, momentum = 0.2;
  const Tensor y = ops::batch_norm(x, running_mean, running_var, weight, bias, true, momentum, eps);
  const double n = 4 * 5;
  for (int64_t c = 0; c < 3; ++c) {
    const auto [mean, var] = channel_stats(x, c);
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t l = 0; l < 5; ++l) {
        const double want = (x.at({b, c, l}) - mean) / std::sqrt(var + eps) * weight.at({c}) + bias.at({c});
        EXPECT_NEAR(y.at({b, c, l}), want, 1e-12) << "channel " << c;
      }
  }
  // running = (1 - momentum) running + momentum batch, with the unbiased variance.
  const std::vector<double> old_mean = {0.5, 0.0, -1.0}, old_var = {2.0, 1.0, 0.5};
  for (int64_t c = 0; c < 3; ++c) {
    const auto [mean, var] = channel_stats(x, c);
    EXPECT_NEAR(running_mean.at({c}), (1 - momentum) * old_mean[c] + momentum * mean, 1e-12);
    EXPECT_NEAR(running_var.at({c}), (1 - momentum) * old_var[c] + momentum * var * n / (n - 1), 1e-12);
  }
  // Without running statistics and parameters: the plain normalisation, each channel mean 0, variance 1.
  const Tensor plain = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  expect_values(plain.mean({0, 2}), {0, 0, 0}, 1e-12);
  expect_values(plain.var({0, 2}, false, 0), {1, 1, 1}, 1e-4);  // var / (var + eps)
}

TEST(BatchNorm, EvaluationUsesTheRunningStatsAndLeavesThem) {
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, {2, 2, 2}, kFloat64);
  const Tensor running_mean = tensor({1.0, -1.0}, kFloat64), running_var = tensor({4.0, 0.25}, kFloat64);
  const Tensor bias = tensor({0.5, 0.0}, kFloat64);
  const Tensor y = ops::batch_norm(x, running_mean, running_var, Tensor(), bias, false, 0.1, 0.0);
  // channel 0: (x - 1) / 2 + 0.5; channel 1: (x + 1) / 0.5
  expect_values(y, {0.5, 1.0, 8.0, 10.0, 2.5, 3.0, 16.0, 18.0}, 1e-12);
  expect_values(running_mean, {1.0, -1.0}, 0);
  expect_values(running_var, {4.0, 0.25}, 0);
  // Any number of trailing dims, including none ([B, C]) and more than two ([B, C, D, H, W]).
  const Tensor y2 = ops::batch_norm(x.reshape({4, 2}), running_mean, running_var, Tensor(), Tensor(), false, 0.1, 0.0);
  EXPECT_NEAR(y2.at({3, 1}), (8.0 + 1.0) / 0.5, 1e-12);
  EXPECT_EQ(ops::batch_norm(x.reshape({1, 2, 2, 1, 2}), running_mean, running_var).sizes(), (Shape{1, 2, 2, 1, 2}));
  // float32 works the same way.
  const Tensor y32 = ops::batch_norm(x.to(kFloat32), running_mean.to(kFloat32), running_var.to(kFloat32), Tensor(),
                                     bias.to(kFloat32), false, 0.1, 0.0);
  expect_values(y32, {0.5, 1.0, 8.0, 10.0, 2.5, 3.0, 16.0, 18.0}, 1e-6);
}

TEST(BatchNorm, Gradchecks) {
  manual_seed(21);
  const Tensor running_mean = tensor({0.1, -0.2, 0.3}, kFloat64), running_var = tensor({0.5, 1.5, 2.0}, kFloat64);
  // Training: the gradient flows through the batch statistics. The running stats are updated on
  // every evaluation; that does not change the output.
  auto training = [=](const V& in) {
    return ops::batch_norm(in[0], running_mean.clone(), running_var.clone(), in[1], in[2], true);
  };
  EXPECT_GRADCHECK(training, V{param({3, 3, 2, 2}), param({3}), param({3})});
  EXPECT_GRADGRADCHECK(training, V{param({2, 3, 3}), param({3}), param({3})});
  // Without parameters, and for a [B, C] input.
  auto plain = [](const V& in) { return ops::batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); };
  EXPECT_GRADCHECK(plain, V{param({5, 3})});
  EXPECT_GRADGRADCHECK(plain, V{param({4, 2})});
  // Evaluation: an affine map of x.
  auto evaluation = [=](const V& in) {
    return ops::batch_norm(in[0], running_mean, running_var, in[1], in[2], false);
  };
  EXPECT_GRADCHECK(evaluation, V{param({2, 3, 4}), param({3}), param({3})});
  EXPECT_GRADGRADCHECK(evaluation, V{param({2, 3, 2}), param({3}), param({3})});
}

TEST(BatchNorm, RunningStatsAreConstantsInEvaluation) {
  Tensor x = ones({2, 2, 3}, TensorOptions(kFloat64).requires_grad(true));
  Tensor running_mean = zeros({2}, TensorOptions(kFloat64).requires_grad(true));
  Tensor running_var = ones({2}, kFloat64);
  ops::sum(ops::batch_norm(x, running_mean, running_var)).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(running_mean.grad().defined());
}

TEST(BatchNorm, RejectsBadInputs) {
  const Tensor x = zeros({4, 3, 2});
  const Tensor stat = zeros({3}), one = ones({3});
  EXPECT_ERROR_WITH(ops::batch_norm(zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm",
                    "expected more than 1 value per channel when training", "[1, 3]");
  EXPECT_ERROR_WITH(ops::batch_norm(zeros({1, 3, 1, 1}), stat.clone(), one.clone(), Tensor(), Tensor(), true),
                    "more than 1 value per channel");
  EXPECT_ERROR_WITH(ops::batch_norm(x, zeros({4}), one), "batch_norm", "running_mean", "[3]", "[4]", "[4, 3, 2]");
  EXPECT_ERROR_WITH(ops::batch_norm(x, stat, one, ones({3, 1})), "batch_norm", "weight", "[3, 1]");
  EXPECT_ERROR_WITH(ops::batch_norm(x, Tensor(), Tensor()), "batch_norm", "must be defined in evaluation mode");
  EXPECT_ERROR_WITH(ops::batch_norm(x, stat, Tensor(), Tensor(), Tensor(), true), "batch_norm", "together");
  EXPECT_ERROR_WITH(ops::batch_norm(x, stat, one, ones({3}, kFloat64)), "batch_norm", "dtype mismatch", "float64",
                    "float32");
  EXPECT_ERROR_WITH(ops::batch_norm(zeros({3}), stat, one), "batch_norm", "at least 2 dims", "[3]");
  EXPECT_ERROR_WITH(ops::batch_norm(zeros({4, 3}, kInt64), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    "batch_norm", "floating", "int64");
  EXPECT_ERROR_WITH(ops::batch_norm(x, stat, one, Tensor(), Tensor(), false, 0.1, -1.0), "batch_norm", "eps");
  const Tensor needs_grad = zeros({3}, TensorOptions(kFloat32).requires_grad(true));
  EXPECT_ERROR_WITH(ops::batch_norm(x, needs_grad, one.clone(), Tensor(), Tensor(), true), "batch_norm",
                    "running_mean requires grad", "buffer");
}
