// context_pool2d: hand-computed values, the fused op against the dense reference (output and every
// gradient, over strides, windows, image sizes and modes), float64 gradchecks, thread-count
// independence, and bad inputs.
#include <cmath>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;
using ops::ContextPool2dOptions;
using ops::ContextPoolMode;

namespace {

ContextPool2dOptions make(int64_t window, int64_t stride, ContextPoolMode mode = ContextPoolMode::Full) {
  ContextPool2dOptions o;
  o.window = window;
  o.stride = stride;
  o.mode = mode;
  return o;
}

int64_t out_size(int64_t n, int64_t stride) { return (n - 1) / stride + 1; }

// Random inputs for an image [batch, h, w, d] with the given options.
V inputs(const ContextPool2dOptions& o, int64_t batch, int64_t h, int64_t w, int64_t d) {
  const Tensor scale = scalar_tensor(1.5, kFloat64);
  return {randn({batch, h, w, d}, kFloat64), ops::mul(randn({batch, h, w}, kFloat64), scale),
          ops::mul(randn({batch, out_size(h, o.stride), out_size(w, o.stride)}, kFloat64), scale)};
}

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

void expect_matches_reference(const ContextPool2dOptions& o, int64_t batch, int64_t h, int64_t w, int64_t d) {
  const V in = inputs(o, batch, h, w, d);
  const Tensor up = randn({batch, out_size(h, o.stride), out_size(w, o.stride), d}, kFloat64);
  const V fused = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool2d(x, a, b, o); }, in, up);
  const V ref = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool2d_reference(x, a, b, o); },
                                 in, up);
  const char* names[] = {"y", "dx", "da", "db"};
  for (size_t t = 0; t < fused.size(); ++t)
    EXPECT_LE(max_diff(fused[t], ref[t]), 1e-12) << names[t] << " (K " << o.window << ", stride " << o.stride
                                                 << ", image " << h << "x" << w << ", mode " << to_string(o.mode) << ")";
}

}  // namespace

TEST(ContextPool2d, HandComputedValues) {
  manual_seed(1);
  // A 1 x 2 image, d = 1, K = 1, uniform weights (w = 1), s_fixed = 1, eps = 0: each output is the
  // Gaussian-weighted mean of both pixels: y_0 = (x_0 + e x_1) / (1 + e), e = exp(-1/2).
  ContextPool2dOptions o = make(1, 1, ContextPoolMode::Uniform);
  o.s_fixed = 1.0;
  o.eps = 0.0;
  const Tensor x = tensor({2.0, 4.0}, {1, 1, 2, 1}, kFloat64);
  const Tensor a = zeros({1, 1, 2}, kFloat64), b = zeros({1, 1, 2}, kFloat64);
  const double e = std::exp(-0.5);
  expect_values(ops::context_pool2d(x, a, b, o), {(2 + e * 4) / (1 + e), (e * 2 + 4) / (1 + e)}, 1e-14);
  // Stride 2 on a 3 x 3 image: outputs at (0, 0), (0, 2), (2, 0), (2, 2), 2 x 2 of them.
  const ContextPool2dOptions s2 = make(1, 2);
  const Tensor img = randn({2, 3, 3, 4}, kFloat64);
  EXPECT_EQ(ops::context_pool2d(img, zeros({2, 3, 3}, kFloat64), zeros({2, 2, 2}, kFloat64), s2).sizes(),
            (Shape{2, 2, 2, 4}));
  // K = 0 (and eps = 0): each output is exactly its centre pixel (the window holds nothing else).
  ContextPool2dOptions k0 = make(0, 2);
  k0.eps = 0.0;
  const Tensor y0 = ops::context_pool2d(img, randn({2, 3, 3}, kFloat64), zeros({2, 2, 2}, kFloat64), k0);
  EXPECT_LE(max_diff(y0, ops::slice(ops::slice(img, 1, 0, 3, 2), 2, 0, 3, 2)), 1e-15);
}

TEST(ContextPool2d, FusedMatchesDenseReference) {
  manual_seed(3);
  for (int64_t stride : {1, 2, 3})
    for (int64_t k : {0, 1, 2})
      for (ContextPoolMode mode : {ContextPoolMode::Full, ContextPoolMode::WeightsOnly, ContextPoolMode::Uniform})
        expect_matches_reference(make(k, stride, mode), 2, 5, 6, 3);
  expect_matches_reference(make(4, 1), 1, 3, 2, 2);  // K beyond the image: the window is clipped
  expect_matches_reference(make(2, 2), 1, 1, 7, 2);  // one row
  expect_matches_reference(make(1, 1), 2, 1, 1, 3);  // one pixel
  expect_matches_reference(make(1, 4), 1, 4, 4, 1);  // stride = image size: one output per axis
}

// eps = 0 and weights whose sum is subnormal (sigmoid(-715) ~ 1e-311): with every weight equal the
// output is the one for weights of 1/2. 1 / Z overflows to inf here; multiplying by it once made the
// slots outside the image NaN instead of 0, and the op then read pixels before the image's start.
// A NaN weight reaches exactly the outputs whose window holds it.
TEST(ContextPool2d, SubnormalNormaliserStillNormalises) {
  manual_seed(7);
  for (int64_t stride : {1, 2}) {
    ContextPool2dOptions o = make(1, stride);
    o.eps = 0.0;
    const int64_t ho = out_size(5, stride), wo = out_size(4, stride);
    const Tensor x = randn({1, 5, 4, 3}, kFloat64), b = randn({1, ho, wo}, kFloat64);
    const Tensor tiny = ops::context_pool2d(x, full({1, 5, 4}, -715.0, kFloat64), b, o);
    EXPECT_LE(max_diff(tiny, ops::context_pool2d(x, zeros({1, 5, 4}, kFloat64), b, o)), 1e-9) << stride;

    Tensor a = zeros({1, 5, 4}, kFloat64);
    a.data_ptr<double>()[2 * 4 + 1] = NAN;  // pixel (2, 1)
    const Tensor y = ops::context_pool2d(x, a, b, o);
    for (int64_t qy = 0; qy < ho; ++qy)
      for (int64_t qx = 0; qx < wo; ++qx) {
        const bool holds = std::abs(stride * qy - 2) <= 1 && std::abs(stride * qx - 1) <= 1;
        EXPECT_EQ(std::isnan(y.select(0, 0).select(0, qy).select(0, qx).sum().item()), holds)
            << "output (" << qy << ", " << qx << "), stride " << stride;
      }
  }
}

TEST(ContextPool2d, Gradchecks) {
  manual_seed(5);
  for (int64_t stride : {1, 2}) {
    for (ContextPoolMode mode : {ContextPoolMode::Full, ContextPoolMode::WeightsOnly}) {
      const ContextPool2dOptions o = make(1, stride, mode);
      V in = inputs(o, 2, 4, 3, 2);
      for (Tensor& t : in) t.requires_grad_(true);
      EXPECT_GRADCHECK([o](const V& v) { return ops::context_pool2d(v[0], v[1], v[2], o); }, in);
    }
  }
  // Supports near s_min and s_max (b far from 0) and a large eps.
  ContextPool2dOptions o = make(2, 1);
  o.eps = 0.3;
  V in = inputs(o, 1, 4, 4, 2);
  in[2] = ops::mul(in[2], scalar_tensor(4.0, kFloat64));
  for (Tensor& t : in) t.requires_grad_(true);
  EXPECT_GRADCHECK([o](const V& v) { return ops::context_pool2d(v[0], v[1], v[2], o); }, in);
  // The reference differentiates twice.
  V small = inputs(make(1, 2), 1, 3, 3, 2);
  for (Tensor& t : small) t.requires_grad_(true);
  EXPECT_GRADGRADCHECK([](const V& v) { return ops::context_pool2d_reference(v[0], v[1], v[2], make(1, 2)); }, small);
}

TEST(ContextPool2d, SameBitsForAnyThreadCount) {
  manual_seed(7);
  const ContextPool2dOptions o = make(2, 2);
  const V in = inputs(o, 4, 16, 16, 8);
  const Tensor up = randn({4, 8, 8, 8}, kFloat64);
  const int saved = get_num_threads();
  set_num_threads(1);
  const V one = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool2d(x, a, b, o); }, in, up);
  set_num_threads(2);
  const V two = forward_backward([&](auto& x, auto& a, auto& b) { return ops::context_pool2d(x, a, b, o); }, in, up);
  set_num_threads(saved);
  for (size_t t = 0; t < one.size(); ++t) EXPECT_EQ(max_diff(one[t], two[t]), 0.0) << t;
}

TEST(ContextPool2d, Float32MatchesFloat64) {
  manual_seed(9);
  const ContextPool2dOptions o = make(2, 2);
  const V in = inputs(o, 2, 7, 5, 6);
  const Tensor y64 = ops::context_pool2d(in[0], in[1], in[2], o);
  const Tensor y32 = ops::context_pool2d(in[0].to(kFloat32), in[1].to(kFloat32), in[2].to(kFloat32), o);
  EXPECT_LE(max_diff(y32, y64), 1e-5);
}

TEST(ContextPool2d, BadInputs) {
  const Tensor x = zeros({1, 4, 4, 2}), a = zeros({1, 4, 4}), b = zeros({1, 4, 4});
  EXPECT_ERROR_WITH(ops::context_pool2d(zeros({4, 4, 2}), a, b), "context_pool2d", "[B, H, W, d]", "[4, 4, 2]");
  EXPECT_ERROR_WITH(ops::context_pool2d(x, zeros({1, 4, 3}), b), "context_pool2d", "a [1, 4, 3]", "[1, 4, 4]");
  EXPECT_ERROR_WITH(ops::context_pool2d(x, a, b, make(1, 2)), "context_pool2d", "b [1, 4, 4]", "[1, 2, 2]", "stride 2");
  EXPECT_ERROR_WITH(ops::context_pool2d(x, a, b, make(-1, 1)), "context_pool2d", "window K must be >= 0");
  EXPECT_ERROR_WITH(ops::context_pool2d(x, a, b, make(1, 0)), "context_pool2d", "stride must be >= 1");
  EXPECT_ERROR_WITH(ops::context_pool2d(x.to(kFloat64), a, b), "context_pool2d", "dtype mismatch");
  EXPECT_ERROR_WITH(ops::context_pool2d(zeros({1, 4, 4, 2}, kInt64), a, b), "context_pool2d", "floating");
  ContextPool2dOptions o;
  o.s_min = 0.0;
  EXPECT_ERROR_WITH(ops::context_pool2d(x, a, b, o), "s_min");
  // Double backward through the fused op is refused with a pointer to the reference.
  Tensor xg = randn({1, 3, 3, 2}, TensorOptions(kFloat64).requires_grad(true));
  const Tensor y = ops::context_pool2d(xg, zeros({1, 3, 3}, kFloat64), zeros({1, 3, 3}, kFloat64));
  EXPECT_ERROR_WITH(autograd::grad({ops::sum(ops::mul(y, y))}, {xg}, {}, /*retain_graph=*/true, /*create_graph=*/true),
                    "context_pool2d", "second derivatives", "context_pool2d_reference");
}
