// ops::local_attention: against full causal attention (window >= T), against a dense band-masked
// reference written with plain ops, gradchecks, bad inputs, float32 and thread-count independence.
#include <cmath>
#include <functional>
#include <string>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

namespace {

// softmax(scale q k^T, masked outside i - W < j <= i) v, the O(T^2) way.
Tensor dense_local_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale = -1.0) {
  const int64_t t = q.sizes()[q.dim() - 2];
  if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(q.sizes().back()));
  const Tensor s = ops::mul(ops::matmul(q, ops::transpose(k, -1, -2)), ops::scalar_like(scale, q));
  const Tensor i = ops::unsqueeze(arange(t, kInt64), 1), j = ops::unsqueeze(arange(t, kInt64), 0);
  const Tensor future = ops::gt(j, i);
  const Tensor too_old = ops::le(j, ops::sub(i, ops::scalar_like(static_cast<double>(window), i)));
  const Tensor outside = ops::logical_not(ops::logical_and(ops::logical_not(future), ops::logical_not(too_old)));
  return ops::matmul(ops::softmax(ops::masked_fill(s, outside, -INFINITY), -1), v);
}

// Output and the three input gradients for a fixed upstream gradient.
V forward_backward(const std::function<Tensor(const V&)>& f, const V& inputs, const Tensor& upstream) {
  for (const Tensor& x : inputs) x.set_grad(Tensor());
  Tensor y = f(inputs);
  y.backward(upstream);
  return {y.detach(), inputs[0].grad(), inputs[1].grad(), inputs[2].grad()};
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  expect_values(got.to(kFloat64), want.to(kFloat64).to_vector<double>(), tol);
}

}  // namespace

TEST(LocalAttention, EqualsFullCausalAttentionWhenWindowCoversT) {
  manual_seed(11);
  Tensor q = randn({2, 3, 6, 4}, kFloat64), k = randn({2, 3, 6, 4}, kFloat64), v = randn({2, 3, 6, 5}, kFloat64);
  const Tensor full = ops::scaled_dot_product_attention(q, k, v, true);
  for (int64_t window : {6, 7, 100}) expect_close(ops::local_attention(q, k, v, window), full, 1e-12);
  // Non-contiguous inputs (a transposed view) give the same result.
  const Tensor qt = q.transpose(1, 2).contiguous().transpose(1, 2);
  expect_close(ops::local_attention(qt, k, v, 6), full, 1e-12);
}

TEST(LocalAttention, MatchesDenseBandReferenceForwardAndGradients) {
  manual_seed(12);
  for (int64_t window : {1, 2, 3, 5}) {
    const V in{param({2, 7, 4}), param({2, 7, 4}), param({2, 7, 3})};
    const Tensor upstream = randn({2, 7, 3}, kFloat64);
    const V got = forward_backward([window](const V& x) { return ops::local_attention(x[0], x[1], x[2], window); },
                                   in, upstream);
    const V want = forward_backward([window](const V& x) { return dense_local_attention(x[0], x[1], x[2], window); },
                                    in, upstream);
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE("window " + std::to_string(window) + ", tensor " + std::to_string(i));
      expect_close(got[i], want[i], 1e-12);
    }
  }
}

TEST(LocalAttention, Gradchecks) {
  manual_seed(13);
  auto local = [](int64_t window, double scale = -1.0) {
    return [window, scale](const V& in) { return ops::local_attention(in[0], in[1], in[2], window, scale); };
  };
  EXPECT_GRADCHECK(local(1), V{param({2, 5, 3}), param({2, 5, 3}), param({2, 5, 3})});        // W = 1
  EXPECT_GRADCHECK(local(3), V{param({2, 6, 3}), param({2, 6, 3}), param({2, 6, 3})});        // W < T
  EXPECT_GRADCHECK(local(9), V{param({1, 4, 3}), param({1, 4, 3}), param({1, 4, 3})});        // W > T
  EXPECT_GRADCHECK(local(2), V{param({2, 2, 5, 3}), param({2, 2, 5, 3}), param({2, 2, 5, 3})});  // [B, H, T, D]
  EXPECT_GRADCHECK(local(3), V{param({2, 5, 4}), param({2, 5, 4}), param({2, 5, 2})});        // Dv != D
  EXPECT_GRADCHECK(local(3, 0.7), V{param({1, 5, 3}), param({1, 5, 3}), param({1, 5, 3})});   // explicit scale
}

TEST(LocalAttention, Gradgradcheck) {
  manual_seed(14);
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::local_attention(in[0], in[1], in[2], 2); },
                       V{param({1, 4, 2}), param({1, 4, 2}), param({1, 4, 3})});
}

TEST(LocalAttention, RejectsBadInput) {
  const Tensor q = zeros({2, 5, 4}, kFloat64), v = zeros({2, 5, 3}, kFloat64);
  EXPECT_ERROR_WITH(ops::local_attention(zeros({5, 4}, kFloat64), zeros({5, 4}, kFloat64), zeros({5, 4}, kFloat64), 2),
                    "local_attention", ">= 3", "[5, 4]");
  EXPECT_ERROR_WITH(ops::local_attention(q, zeros({2, 6, 4}, kFloat64), v, 2), "local_attention", "[2, 6, 4]",
                    "do not fit", "same T");
  EXPECT_ERROR_WITH(ops::local_attention(q, zeros({2, 5, 3}, kFloat64), v, 2), "local_attention", "[2, 5, 3]",
                    "do not fit");
  EXPECT_ERROR_WITH(ops::local_attention(q, q, zeros({2, 4, 3}, kFloat64), 2), "local_attention", "do not fit");
  EXPECT_ERROR_WITH(ops::local_attention(q, zeros({3, 5, 4}, kFloat64), zeros({3, 5, 3}, kFloat64), 2),
                    "local_attention", "do not fit");
  EXPECT_ERROR_WITH(ops::local_attention(q, q, v, 0), "local_attention", "window must be >= 1", "got 0");
  EXPECT_ERROR_WITH(ops::local_attention(q, q, v, -3), "local_attention", "window must be >= 1", "got -3");
  EXPECT_ERROR_WITH(ops::local_attention(q, zeros({2, 5, 4}), v, 2), "local_attention", "dtype mismatch", "float32");
  EXPECT_ERROR_WITH(ops::local_attention(zeros({2, 5, 4}, kInt64), zeros({2, 5, 4}, kInt64), zeros({2, 5, 3}, kInt64), 2),
                    "local_attention", "floating", "int64");
  if (ops::cuda_is_available()) {
    const Tensor d = q.to(cuda_device());
    EXPECT_ERROR_WITH(ops::local_attention(d, d, v.to(cuda_device()), 2), "local_attention", "not implemented on cuda:0");
  }
}

TEST(LocalAttention, Float32MatchesFloat64) {
  manual_seed(15);
  const V in64{param({2, 2, 20, 8}), param({2, 2, 20, 8}), param({2, 2, 20, 6})};
  V in32;
  for (const Tensor& x : in64) in32.push_back(x.detach().to(kFloat32).requires_grad_(true));
  const Tensor upstream = randn({2, 2, 20, 6}, kFloat64);
  auto f = [](const V& x) { return ops::local_attention(x[0], x[1], x[2], 5); };
  const V want = forward_backward(f, in64, upstream), got = forward_backward(f, in32, upstream.to(kFloat32));
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("tensor " + std::to_string(i));
    EXPECT_EQ(got[i].dtype(), kFloat32);
    expect_close(got[i], want[i], 1e-5);
  }
}

TEST(LocalAttention, SameResultsWithOneAndTwoThreads) {
  manual_seed(16);
  // Large enough that parallel_for splits the rows (4 * 256 rows, grain 16384 / (8 * 32) = 64).
  for (DType dtype : {kFloat32, kFloat64}) {
    const V in{randn({4, 256, 16}, dtype).requires_grad_(true), randn({4, 256, 16}, dtype).requires_grad_(true),
               randn({4, 256, 16}, dtype).requires_grad_(true)};
    const Tensor upstream = randn({4, 256, 16}, dtype);
    auto f = [](const V& x) { return ops::local_attention(x[0], x[1], x[2], 8); };
    const int threads = get_num_threads();
    set_num_threads(1);
    const V one = forward_backward(f, in, upstream);
    set_num_threads(2);
    const V two = forward_backward(f, in, upstream);
    set_num_threads(threads);
    for (size_t i = 0; i < one.size(); ++i)
      EXPECT_EQ(one[i].to(kFloat64).to_vector<double>(), two[i].to(kFloat64).to_vector<double>()) << "tensor " << i;
  }
}
