// conv1d: hand-computed values, a naive-loop reference, gradchecks (causal, both sides, dilated,
// kernel 1), double backward, causality and every bad input.
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

namespace {

// out[b, o, t] = bias[o] + sum_{c, k} w[o, c, k] * xp[b, c, t + k * dilation], by plain loops.
std::vector<double> conv1d_loops(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t pad_left,
                                 int64_t pad_right, int64_t dilation) {
  const int64_t B = x.sizes()[0], C = x.sizes()[1], L = x.sizes()[2];
  const int64_t O = w.sizes()[0], K = w.sizes()[2];
  const int64_t L_out = L + pad_left + pad_right - dilation * (K - 1);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(O, 0.0);
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t t = 0; t < L_out; ++t) {
        double acc = bv[o];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t k = 0; k < K; ++k) {
            const int64_t i = t + k * dilation - pad_left;  // position in the unpadded input
            if (i >= 0 && i < L) acc += wv[(o * C + c) * K + k] * xv[(b * C + c) * L + i];
          }
        out.push_back(acc);
      }
  return out;
}

struct Case {
  int64_t kernel, pad_left, pad_right, dilation;
};

}  // namespace

TEST(Conv1d, HandComputedValues) {
  // Two input channels, so the (channel, tap) order of the im2col rows is checked.
  Tensor x = tensor({1, 2, 3, 4, 0.5, -1, 2, 0}, {1, 2, 4}, kFloat64);
  Tensor w = tensor({1, 2, 0, -1, 0, 0, 1, 1}, {2, 2, 2}, kFloat64);
  Tensor b = tensor({0.5, -1}, kFloat64);
  Tensor y = ops::conv1d(x, w, b);
  EXPECT_EQ(y.sizes(), (Shape{1, 2, 3}));
  expect_values(y, {6.5, 6.5, 11.5, -1.5, 0, 1}, 1e-12);

  Tensor x1 = tensor({1, 2, 3, 4}, {1, 1, 4}, kFloat64);
  Tensor w1 = tensor({1, 10}, {1, 1, 2}, kFloat64);
  // Causal, dilation 2: xp = [0, 0, 1, 2, 3, 4], out[t] = xp[t] + 10 xp[t + 2].
  expect_values(ops::conv1d(x1, w1, Tensor(), 2, 0, 2), {10, 20, 31, 42}, 1e-12);
  // Both sides: xp = [0, 1, 2, 3, 4, 0, 0], out[t] = xp[t] + 10 xp[t + 1].
  expect_values(ops::conv1d(x1, w1, Tensor(), 1, 2), {10, 21, 32, 43, 4, 0}, 1e-12);
}

TEST(Conv1d, MatchesLoopReference) {
  manual_seed(0);
  for (const Case& c : {Case{3, 0, 0, 1}, Case{3, 2, 0, 1}, Case{3, 1, 2, 1}, Case{3, 4, 0, 2}, Case{1, 0, 0, 1},
                        Case{2, 3, 1, 3}}) {
    Tensor x = randn({2, 3, 7}, kFloat64), w = randn({4, 3, c.kernel}, kFloat64), b = randn({4}, kFloat64);
    Tensor y = ops::conv1d(x, w, b, c.pad_left, c.pad_right, c.dilation);
    const int64_t L_out = 7 + c.pad_left + c.pad_right - c.dilation * (c.kernel - 1);
    EXPECT_EQ(y.sizes(), (Shape{2, 4, L_out}));
    expect_values(y, conv1d_loops(x, w, b, c.pad_left, c.pad_right, c.dilation), 1e-12);
    expect_values(ops::conv1d(x, w, Tensor(), c.pad_left, c.pad_right, c.dilation),
                  conv1d_loops(x, w, Tensor(), c.pad_left, c.pad_right, c.dilation), 1e-12);
  }
  // float32 too.
  Tensor x = randn({2, 3, 7}), w = randn({4, 3, 3}), b = randn({4});
  std::vector<double> want = conv1d_loops(x.to(kFloat64), w.to(kFloat64), b.to(kFloat64), 2, 0, 1);
  expect_values(ops::conv1d(x, w, b, 2, 0, 1), want, 1e-5);
}

TEST(Conv1d, Gradcheck) {
  manual_seed(1);
  for (const Case& c : {Case{3, 2, 0, 1}, Case{3, 1, 2, 1}, Case{3, 2, 2, 2}, Case{1, 0, 0, 1}}) {
    SCOPED_TRACE(::testing::Message() << "kernel " << c.kernel << " pad " << c.pad_left << "/" << c.pad_right
                                      << " dilation " << c.dilation);
    auto f = [c](const V& in) { return ops::conv1d(in[0], in[1], in[2], c.pad_left, c.pad_right, c.dilation); };
    EXPECT_GRADCHECK(f, V{param({2, 3, 5}), param({4, 3, c.kernel}), param({4})});
  }
  // Without bias.
  EXPECT_GRADCHECK([](const V& in) { return ops::conv1d(in[0], in[1], Tensor(), 1, 1); },
                   V{param({1, 2, 4}), param({3, 2, 3})});
}

TEST(Conv1d, Gradgradcheck) {
  manual_seed(2);
  auto f = [](const V& in) { return ops::conv1d(in[0], in[1], in[2], 2, 1, 2); };
  EXPECT_GRADGRADCHECK(f, V{param({2, 2, 4}), param({3, 2, 2}), param({3})});
}

TEST(Conv1d, CausalOutputIgnoresTheFuture) {
  manual_seed(3);
  const int64_t K = 3, dilation = 2, L = 8;
  Tensor x = randn({2, 3, L}, kFloat64), w = randn({4, 3, K}, kFloat64), b = randn({4}, kFloat64);
  const Tensor y = ops::conv1d(x, w, b, dilation * (K - 1), 0, dilation);
  ASSERT_EQ(y.sizes(), (Shape{2, 4, L}));
  for (int64_t j = 0; j < L; ++j) {
    Tensor bumped = x.clone();
    {
      NoGradGuard no_grad;
      bumped.narrow(2, j, 1).fill_(100.0);
    }
    const Tensor diff = ops::abs(ops::sub(ops::conv1d(bumped, w, b, dilation * (K - 1), 0, dilation), y));
    // Positions before j are unchanged, position j does change.
    if (j > 0) {
      EXPECT_EQ(diff.narrow(2, 0, j).max().item(), 0.0) << "input " << j << " leaked backwards";
    }
    EXPECT_GT(diff.narrow(2, j, 1).max().item(), 0.0) << "input " << j;
  }
}

TEST(Conv1d, RejectsBadInput) {
  const Tensor x = zeros({1, 3, 4}), w = zeros({2, 3, 2});
  EXPECT_ERROR_WITH(ops::conv1d(zeros({3, 4}), w), "conv1d", "[3, 4]", "3-D");
  EXPECT_ERROR_WITH(ops::conv1d(x, zeros({2, 3})), "conv1d", "weight", "[2, 3]", "3-D");
  EXPECT_ERROR_WITH(ops::conv1d(x, zeros({2, 5, 2})), "conv1d", "[1, 3, 4]", "3 channels", "[2, 5, 2]",
                    "C_in = 5");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, zeros({3})), "conv1d", "bias", "[2]", "[3]");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, zeros({2, 1})), "conv1d", "bias", "[2, 1]");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, Tensor(), -1, 0), "conv1d", "non-negative", "pad_left=-1");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, Tensor(), 0, -2), "conv1d", "non-negative", "pad_right=-2");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, Tensor(), 0, 0, 0), "conv1d", "dilation", ">= 1", "got 0");
  EXPECT_ERROR_WITH(ops::conv1d(zeros({1, 3, 2}), zeros({2, 3, 3})), "conv1d", "[1, 3, 2]", "kernel 3",
                    "L_out = 0");
  EXPECT_ERROR_WITH(ops::conv1d(x, zeros({2, 3, 2}), Tensor(), 0, 0, 5), "conv1d", "dilation 5", "L_out = -1");
  EXPECT_ERROR_WITH(ops::conv1d(x, zeros({2, 3, 2}, kFloat64)), "conv1d", "dtype mismatch", "float32",
                    "float64");
  EXPECT_ERROR_WITH(ops::conv1d(x, w, zeros({2}, kFloat64)), "conv1d", "dtype mismatch");
  EXPECT_ERROR_WITH(ops::conv1d(zeros({1, 3, 4}, kInt64), w), "conv1d", "floating", "int64");
  EXPECT_ERROR_WITH(ops::conv1d(x, Tensor()), "conv1d", "weight", "undefined");
}

TEST(Conv1d, RejectsDeviceMismatch) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_ERROR_WITH(ops::conv1d(zeros({1, 3, 4}), zeros({2, 3, 2}, cuda_device())), "conv1d",
                    "device mismatch", "cuda:0");
}
