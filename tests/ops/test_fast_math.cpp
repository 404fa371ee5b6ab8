// The vectorised float exp/tanh/erf against <cmath> in double, over their whole useful range.
#include <cmath>

#include "helpers/test_utils.h"
#include "ops/cpu/fast_math.h"

using namespace ctxpool;
using namespace ctxpool::cpu;

TEST(FastMath, ExpTanhErfAccuracy) {
  double worst_exp = 0, worst_tanh = 0, worst_erf = 0;
  for (float x = -87.0f; x <= 88.5f; x += 0.00123f) {
    const double e = std::exp(static_cast<double>(x));
    worst_exp = std::max(worst_exp, std::abs(fast_exp(x) - e) / e);
    const double t = std::tanh(static_cast<double>(x));
    if (t != 0) worst_tanh = std::max(worst_tanh, std::abs(fast_tanh(x) - t) / std::abs(t));
    worst_erf = std::max(worst_erf, std::abs(fast_erf(x) - std::erf(static_cast<double>(x))));
  }
  for (float x : {1e-7f, -3e-5f, 1e-3f, 0.399f, 0.401f, -0.401f}) {
    const double t = std::tanh(static_cast<double>(x));
    worst_tanh = std::max(worst_tanh, std::abs(fast_tanh(x) - t) / std::abs(t));
  }
  EXPECT_LT(worst_exp, 3e-7);   // a few float ulps
  EXPECT_LT(worst_tanh, 3e-7);
  EXPECT_LT(worst_erf, 5e-7);   // absolute: Abramowitz & Stegun 7.1.26 plus float rounding
}

TEST(FastMath, SpecialValues) {
  EXPECT_EQ(fast_exp(-INFINITY), 0.0f);
  EXPECT_EQ(fast_exp(-200.0f), 0.0f);
  EXPECT_EQ(fast_exp(INFINITY), INFINITY);
  EXPECT_EQ(fast_exp(100.0f), INFINITY);
  EXPECT_TRUE(std::isnan(fast_exp(NAN)));
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_EQ(fast_tanh(INFINITY), 1.0f);
  EXPECT_EQ(fast_tanh(-INFINITY), -1.0f);
  EXPECT_TRUE(std::isnan(fast_tanh(NAN)));
  EXPECT_EQ(fast_tanh(0.0f), 0.0f);
}

TEST(FastMath, Float32OpsAgreeWithFloat64) {
  manual_seed(8);
  Tensor x = ops::mul(randn({10000}, kFloat64), scalar_tensor(4.0, kFloat64));
  Tensor xf = x.to(kFloat32);
  // |float - double| <= atol + rtol |double|, with atol at float resolution near 1.
  auto close = [](const Tensor& f32, const Tensor& f64, double rtol) {
    const auto a = f32.to_vector<double>(), b = f64.to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_LE(std::abs(a[i] - b[i]), 1e-6 + rtol * std::abs(b[i])) << "x = " << i;
  };
  close(ops::exp(xf), ops::exp(x), 1e-6);
  close(ops::tanh(xf), ops::tanh(x), 1e-6);
  close(ops::sigmoid(xf), ops::sigmoid(x), 1e-6);
  close(ops::gelu(xf), ops::gelu(x), 1e-5);
  close(ops::gelu(xf, "tanh"), ops::gelu(x, "tanh"), 1e-5);
  close(ops::softmax(xf.reshape({100, 100}), 1), ops::softmax(x.reshape({100, 100}), 1), 1e-5);
}
