// Shared test helpers: float64 random inputs, gradcheck assertions, error-message assertions.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace ctxpool::testing {

// A float64 leaf that requires grad, N(0, 1) (seeded by the caller via manual_seed).
inline Tensor param(const Shape& sizes) {
  return randn(sizes, TensorOptions(kFloat64).requires_grad(true));
}
// Values away from zero and kinks: uniform in [lo, hi].
inline Tensor param_uniform(const Shape& sizes, double lo, double hi) {
  Tensor u = rand(sizes, kFloat64);
  Tensor t = ops::add(ops::mul(u, ops::scalar_like(hi - lo, u)), ops::scalar_like(lo, u));
  return t.requires_grad_(true);
}

// Runs `statement` and checks it throws ctxpool::Error whose message contains every fragment.
#define EXPECT_ERROR_WITH(statement, ...)                                                   \
  do {                                                                                      \
    try {                                                                                   \
      statement;                                                                            \
      ADD_FAILURE() << "expected ctxpool::Error from: " #statement;                         \
    } catch (const ::ctxpool::Error& e) {                                                   \
      const std::string msg = e.what();                                                     \
      for (const std::string& frag : {__VA_ARGS__})                                         \
        EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg                 \
                                                     << "\nmissing: " << frag;              \
    }                                                                                       \
  } while (0)

// EXPECT_GRADCHECK(fn, inputs) (variadic so that commas inside lambdas and braces are fine)
#define EXPECT_GRADCHECK(...)                                               \
  do {                                                                      \
    auto result = ::ctxpool::autograd::gradcheck(__VA_ARGS__);              \
    EXPECT_TRUE(result.ok) << result.message;                               \
  } while (0)

#define EXPECT_GRADGRADCHECK(...)                                           \
  do {                                                                      \
    auto result = ::ctxpool::autograd::gradgradcheck(__VA_ARGS__);          \
    EXPECT_TRUE(result.ok) << result.message;                               \
  } while (0)

inline void expect_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-6) {
  const std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at element " << i;
}

}  // namespace ctxpool::testing
