// Scaled dot-product attention as one op with its own backward: the probabilities P are computed
// once, saved, and reused by the backward (softmax is not materialised twice).
//
//   forward:  S = scale * Q K^T (masked), P = softmax(S), O = P V
//   backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = scale dS K,
//             dK = scale dS^T Q
#include <cmath>

#include "ops/attention_grad.h"
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// The probabilities with differentiable ops (for the create_graph backward).
Tensor attention_probs_composite(const Tensor& q, const Tensor& k, bool causal, double scale) {
  Tensor s = mul(matmul(q, transpose(k, -1, -2)), scalar_like(scale, q));
  if (causal) {
    const int64_t t = q.sizes()[q.dim() - 2], sl = k.sizes()[k.dim() - 2];
    const TensorOptions index_opts = TensorOptions(kInt64).device(q.device());
    const Tensor rows = unsqueeze(arange(t, index_opts), 1), cols = unsqueeze(arange(sl, index_opts), 0);
    s = masked_fill(s, gt(cols, rows), -INFINITY);
  }
  return softmax(s, -1);
}

// x as the matmul kernel can read it: any batch strides, a unit stride in one of the last two dims
// (a copy only when neither has one). Views of a fused QKV projection need no copy.
Tensor gemm_ready(const Tensor& x) {
  const Tensor d = x.detach();
  return matmul_operand_ok(d) ? d : d.contiguous();
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  check_floating("scaled_dot_product_attention", q);
  check_same("scaled_dot_product_attention", q, k);
  check_same("scaled_dot_product_attention", q, v);
  const auto matmul_kernel = kernel(&Kernels::matmul, "scaled_dot_product_attention", q);
  const auto attention_softmax_rows = kernel(&Kernels::attention_softmax_rows, "scaled_dot_product_attention", q);
  CTXPOOL_CHECK(q.dim() >= 3 && k.dim() == q.dim() && v.dim() == q.dim(),
                "scaled_dot_product_attention: expected q, k, v with the same number (>= 3) of dims "
                "[..., T, D], got ", q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  const int64_t nd = q.dim();
  const Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  CTXPOOL_CHECK(Shape(k.sizes().begin(), k.sizes().end() - 2) == batch &&
                    Shape(v.sizes().begin(), v.sizes().end() - 2) == batch &&
                    k.sizes()[nd - 1] == q.sizes()[nd - 1] && v.sizes()[nd - 2] == k.sizes()[nd - 2],
                "scaled_dot_product_attention: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(),
                " do not fit (expected q [..., T, D], k [..., S, D], v [..., S, Dv])");
  const int64_t t = q.sizes()[nd - 2], s_len = k.sizes()[nd - 2], dv = v.sizes()[nd - 1];
  if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(q.sizes()[nd - 1]));

  Shape p_sizes = batch, out_sizes = batch;
  p_sizes.insert(p_sizes.end(), {t, s_len});
  out_sizes.insert(out_sizes.end(), {t, dv});
  Tensor p = new_empty(p_sizes, q.dtype(), q.device());
  Tensor out = new_empty(out_sizes, q.dtype(), q.device());
  {
    autograd::NoGradGuard no_grad;
    const Tensor q_ready = gemm_ready(q), k_ready = gemm_ready(k), v_ready = gemm_ready(v);
    matmul_kernel(q_ready, k_ready.transpose(-1, -2), p);
    attention_softmax_rows(p, t, scale, causal);
    matmul_kernel(p, v_ready, out);
  }

  return record("scaled_dot_product_attention", {q, k, v}, out,
                [sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v), p, causal, scale](
                    const Tensor& g, const LambdaNode& n) {
    const Tensor q = sq.unpack("attention"), k = sk.unpack("attention"), v = sv.unpack("attention");
    if (autograd::GradMode::is_enabled()) {
      // create_graph: the same formulas with ops, so the gradient carries its own graph.
      return attention_grads_composite(attention_probs_composite(q, k, causal, scale), q, k, v, g, scale, n);
    }
    const auto matmul_kernel = kernel(&Kernels::matmul, "scaled_dot_product_attention backward", q);
    const Tensor q_ready = gemm_ready(q), k_ready = gemm_ready(k), v_ready = gemm_ready(v), g_ready = gemm_ready(g);
    Tensor dq, dk, dv;
    if (n.needs_input_grad(2)) {
      dv = new_empty(v.sizes(), v.dtype(), v.device());
      matmul_kernel(p.transpose(-1, -2), g_ready, dv);
    }
    if (n.needs_input_grad(0) || n.needs_input_grad(1)) {
      Tensor ds = new_empty(p.sizes(), q.dtype(), q.device());
      matmul_kernel(g_ready, v_ready.transpose(-1, -2), ds);
      kernel(&Kernels::softmax_backward_rows, "scaled_dot_product_attention backward", q)(p, ds, scale);
      if (n.needs_input_grad(0)) {
        dq = new_empty(q.sizes(), q.dtype(), q.device());
        matmul_kernel(ds, k_ready, dq);
      }
      if (n.needs_input_grad(1)) {
        dk = new_empty(k.sizes(), k.dtype(), k.device());
        matmul_kernel(ds.transpose(-1, -2), q_ready, dk);
      }
    }
    return Grads{dq, dk, dv};
  });
}

}  // namespace ctxpool::ops
