// Agreement with PyTorch: golden inputs, outputs and gradients written by bench/reference/make_golden.py
// (float64) into tests/golden/, so that these tests need no PyTorch. Each case runs in float64 (tight
// tolerance) and again in float32 (the STYLE.md tolerances for op vs PyTorch golden values).
#include <nlohmann/json.hpp>

#include <string>

#include "helpers/golden.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

// A float64 or float32 leaf that requires grad, with the golden tensor's values.
Tensor leaf(const Tensor& golden, DType dtype) { return golden.to(dtype).clone().requires_grad_(true); }

ops::ContextPool1dOptions context_pool_options(const nlohmann::json& j) {
  ops::ContextPool1dOptions o;
  o.window = j.at("window").get<int64_t>();
  o.causal = j.at("causal").get<bool>();
  o.s_min = j.at("s_min").get<double>();
  o.s_max = j.at("s_max").get<double>();
  o.eps = j.at("eps").get<double>();
  o.mode = ops::context_pool_mode_from_string(j.at("mode").get<std::string>());
  o.s_fixed = j.at("s_fixed").get<double>();
  return o;
}

void check_context_pool(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("context_pool1d", &golden)) return;
  for (int i = 0; i < golden.cases; ++i) {
    const std::string name = golden.describe(i);
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const auto options = context_pool_options(golden.options(i));
    Tensor x = leaf(golden.get(i, "x"), dtype), a = leaf(golden.get(i, "a"), dtype);
    Tensor b = leaf(golden.get(i, "b"), dtype);
    Tensor y = ops::context_pool1d(x, a, b, options);
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
    expect_close(a.grad(), golden.get(i, "ga"), grad, name + " ga");
    expect_close(b.grad(), golden.get(i, "gb"), grad, name + " gb");
  }
}

void check_context_pool2d(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("context_pool2d", &golden)) return;
  for (int i = 0; i < golden.cases; ++i) {
    const std::string name = golden.describe(i);
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const nlohmann::json j = golden.options(i);
    ops::ContextPool2dOptions o;
    o.window = j.at("window").get<int64_t>();
    o.stride = j.at("stride").get<int64_t>();
    o.s_min = j.at("s_min").get<double>();
    o.s_max = j.at("s_max").get<double>();
    o.eps = j.at("eps").get<double>();
    o.mode = ops::context_pool_mode_from_string(j.at("mode").get<std::string>());
    o.s_fixed = j.at("s_fixed").get<double>();
    Tensor x = leaf(golden.get(i, "x"), dtype), a = leaf(golden.get(i, "a"), dtype);
    Tensor b = leaf(golden.get(i, "b"), dtype);
    Tensor y = ops::context_pool2d(x, a, b, o);
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
    expect_close(a.grad(), golden.get(i, "ga"), grad, name + " ga");
    expect_close(b.grad(), golden.get(i, "gb"), grad, name + " gb");
  }
}

void check_conv1d(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("conv1d", &golden)) return;
  for (int i = 0; i < golden.cases; ++i) {
    const std::string name = golden.describe(i);
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const nlohmann::json options = golden.options(i);
    const bool has_bias = options.at("bias").get<bool>();
    ASSERT_EQ(has_bias, golden.has(i, "bias")) << name;
    Tensor x = leaf(golden.get(i, "x"), dtype), weight = leaf(golden.get(i, "weight"), dtype);
    Tensor bias = has_bias ? leaf(golden.get(i, "bias"), dtype) : Tensor();
    Tensor y = ops::conv1d(x, weight, bias, options.at("pad_left").get<int64_t>(),
                           options.at("pad_right").get<int64_t>(), options.at("dilation").get<int64_t>());
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
    expect_close(weight.grad(), golden.get(i, "gweight"), grad, name + " gweight");
    if (has_bias) expect_close(bias.grad(), golden.get(i, "gbias"), grad, name + " gbias");
  }
}

std::array<int64_t, 2> size2(const nlohmann::json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

void check_pool(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("pool", &golden)) return;
  for (int i = 0; i < golden.cases; ++i) {
    const std::string name = golden.describe(i);
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const nlohmann::json o = golden.options(i);
    const std::string op = o.at("op").get<std::string>();
    Tensor x = leaf(golden.get(i, "x"), dtype), y;
    if (op == "adaptive_avg_pool2d") {
      y = ops::adaptive_avg_pool2d(x, size2(o.at("output_size")));
    } else {
      std::optional<std::array<int64_t, 2>> stride;
      if (!o.at("stride").is_null()) stride = size2(o.at("stride"));
      const auto kernel = size2(o.at("kernel")), padding = size2(o.at("padding"));
      const bool ceil_mode = o.at("ceil_mode").get<bool>();
      if (op == "max_pool2d") {
        auto [values, indices] = ops::max_pool2d_with_indices(x, kernel, stride, padding, size2(o.at("dilation")),
                                                              ceil_mode);
        y = values;
        expect_close(indices, golden.get(i, "indices"), {0, 0}, name + " indices");
      } else {
        ASSERT_EQ(op, "avg_pool2d");
        y = ops::avg_pool2d(x, kernel, stride, padding, ceil_mode, o.at("count_include_pad").get<bool>());
      }
    }
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
  }
}

void check_batch_norm(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("batch_norm", &golden)) return;
  for (int i = 0; i < golden.cases; ++i) {
    const std::string name = golden.describe(i);
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const nlohmann::json o = golden.options(i);
    const bool affine = o.at("affine").get<bool>(), running = o.at("running").get<bool>();
    Tensor x = leaf(golden.get(i, "x"), dtype);
    Tensor weight = affine ? leaf(golden.get(i, "weight"), dtype) : Tensor();
    Tensor bias = affine ? leaf(golden.get(i, "bias"), dtype) : Tensor();
    // Running statistics are state: plain tensors, updated in place by a training call.
    Tensor running_mean = running ? golden.get(i, "running_mean").to(dtype).clone() : Tensor();
    Tensor running_var = running ? golden.get(i, "running_var").to(dtype).clone() : Tensor();
    Tensor y = ops::batch_norm(x, running_mean, running_var, weight, bias, o.at("training").get<bool>(),
                               o.at("momentum").get<double>(), o.at("eps").get<double>());
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
    if (affine) {
      expect_close(weight.grad(), golden.get(i, "gweight"), grad, name + " gweight");
      expect_close(bias.grad(), golden.get(i, "gbias"), grad, name + " gbias");
    }
    if (running) {
      expect_close(running_mean, golden.get(i, "running_mean_out"), forward, name + " running_mean");
      expect_close(running_var, golden.get(i, "running_var_out"), forward, name + " running_var");
    }
  }
}

// conv2d (the CPU's fused kernels) or conv2d_im2col (the composition), against the same file.
void check_conv2d(DType dtype, Tolerance forward, Tolerance grad) {
  GoldenFile golden;
  if (!load_golden("conv2d", &golden)) return;
  for (int run = 0; run < 2 * golden.cases; ++run) {
    const bool composition = run >= golden.cases;
    const int i = run % golden.cases;
    const auto conv = composition ? ops::conv2d_im2col : ops::conv2d;
    const std::string name = golden.describe(i) + (composition ? " (conv2d_im2col)" : "");
    SCOPED_TRACE(name + " " + golden.metadata.at("case" + std::to_string(i)));
    const nlohmann::json o = golden.options(i);
    const bool has_bias = o.at("bias").get<bool>();
    ASSERT_EQ(has_bias, golden.has(i, "bias")) << name;
    Tensor x = leaf(golden.get(i, "x"), dtype), weight = leaf(golden.get(i, "weight"), dtype);
    Tensor bias = has_bias ? leaf(golden.get(i, "bias"), dtype) : Tensor();
    Tensor y = conv(x, weight, bias, size2(o.at("stride")), size2(o.at("padding")), size2(o.at("dilation")),
                    o.at("groups").get<int64_t>());
    y.backward(golden.get(i, "gy").to(dtype));
    expect_close(y, golden.get(i, "y"), forward, name + " y");
    expect_close(x.grad(), golden.get(i, "gx"), grad, name + " gx");
    expect_close(weight.grad(), golden.get(i, "gweight"), grad, name + " gweight");
    if (has_bias) expect_close(bias.grad(), golden.get(i, "gbias"), grad, name + " gbias");
  }
}

}  // namespace

TEST(Golden, ContextPool1dFloat64MatchesPyTorch) { check_context_pool(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, ContextPool1dFloat32MatchesPyTorch) { check_context_pool(kFloat32, kFloat32Forward, kFloat32Grad); }
TEST(Golden, ContextPool2dFloat64MatchesPyTorch) { check_context_pool2d(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, ContextPool2dFloat32MatchesPyTorch) { check_context_pool2d(kFloat32, kFloat32Forward, kFloat32Grad); }
TEST(Golden, Conv1dFloat64MatchesPyTorch) { check_conv1d(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, Conv1dFloat32MatchesPyTorch) { check_conv1d(kFloat32, kFloat32Forward, kFloat32Grad); }
TEST(Golden, Conv2dFloat64MatchesPyTorch) { check_conv2d(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, Conv2dFloat32MatchesPyTorch) { check_conv2d(kFloat32, kFloat32Forward, kFloat32Grad); }
TEST(Golden, Pool2dFloat64MatchesPyTorch) { check_pool(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, Pool2dFloat32MatchesPyTorch) { check_pool(kFloat32, kFloat32Forward, kFloat32Grad); }
TEST(Golden, BatchNormFloat64MatchesPyTorch) { check_batch_norm(kFloat64, kFloat64Tol, kFloat64Tol); }
TEST(Golden, BatchNormFloat32MatchesPyTorch) { check_batch_norm(kFloat32, kFloat32Forward, kFloat32Grad); }
