// Scaled dot-product attention as one op with its own backward: the probabilities P are computed
// once, saved, and reused by the backward (softmax is not materialised twice).
//
//   forward:  S = scale * Q K^T (masked), P = softmax(S), O = P V
//   backward: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = scale dS K,
//             dK = scale dS^T Q
#include <cmath>

#include "ops/cpu/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// The probabilities with differentiable ops (for the create_graph backward).
Tensor attention_probs_composite(const Tensor& q, const Tensor& k, bool causal, double scale) {
  Tensor s = mul(matmul(q, transpose(k, -1, -2)), scalar_like(scale, q));
  if (causal) {
    const int64_t t = q.sizes()[q.dim() - 2], sl = k.sizes()[k.dim() - 2];
    const Tensor rows = unsqueeze(arange(t, kInt64), 1), cols = unsqueeze(arange(sl, kInt64), 0);
    s = masked_fill(s, gt(cols, rows), -INFINITY);
  }
  return softmax(s, -1);
}

// x as the matmul kernel can read it: any batch strides, a unit stride in one of the last two dims
// (a copy only when neither has one). Views of a fused QKV projection need no copy.
Tensor gemm_ready(const Tensor& x) {
  const Tensor d = x.detach();
  return cpu::matmul_operand_ok(d) ? d : d.contiguous();
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  check_floating("scaled_dot_product_attention", q);
  check_same("scaled_dot_product_attention", q, k);
  check_same("scaled_dot_product_attention", q, v);
  check_cpu("scaled_dot_product_attention", {&q, &k, &v});
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
    const Tensor kq = gemm_ready(q), kk = gemm_ready(k), kv = gemm_ready(v);
    cpu::matmul(kq, kk.transpose(-1, -2), p);
    cpu::attention_softmax_rows(p, t, scale, causal);
    cpu::matmul(p, kv, out);
  }

  return record("scaled_dot_product_attention", {q, k, v}, out,
                [sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v), p, causal, scale](
                    const Tensor& g, const LambdaNode& n) {
    const Tensor q = sq.unpack("attention"), k = sk.unpack("attention"), v = sv.unpack("attention");
    if (autograd::GradMode::is_enabled()) {
      // create_graph: the same formulas with ops, so the gradient carries its own graph.
      const Tensor pr = attention_probs_composite(q, k, causal, scale);
      const Tensor dp = matmul(g, transpose(v, -1, -2));
      const Tensor ds = mul(pr, sub(dp, sum(mul(dp, pr), {-1}, true)));
      const Tensor sc = scalar_like(scale, q);
      return Grads{n.needs_input_grad(0) ? mul(matmul(ds, k), sc) : Tensor(),
                   n.needs_input_grad(1) ? mul(matmul(transpose(ds, -1, -2), q), sc) : Tensor(),
                   n.needs_input_grad(2) ? matmul(transpose(pr, -1, -2), g) : Tensor()};
    }
    const Tensor kq = gemm_ready(q), kk = gemm_ready(k), kv = gemm_ready(v), kg = gemm_ready(g);
    Tensor dq, dk, dv;
    if (n.needs_input_grad(2)) {
      dv = new_empty(v.sizes(), v.dtype(), v.device());
      cpu::matmul(p.transpose(-1, -2), kg, dv);
    }
    if (n.needs_input_grad(0) || n.needs_input_grad(1)) {
      Tensor ds = new_empty(p.sizes(), q.dtype(), q.device());
      cpu::matmul(kg, kv.transpose(-1, -2), ds);
      cpu::softmax_backward_rows(p, ds, scale);
      if (n.needs_input_grad(0)) {
        dq = new_empty(q.sizes(), q.dtype(), q.device());
        cpu::matmul(ds, kk, dq);
      }
      if (n.needs_input_grad(1)) {
        dk = new_empty(k.sizes(), k.dtype(), k.device());
        cpu::matmul(ds.transpose(-1, -2), kq, dk);
      }
    }
    return Grads{dq, dk, dv};
  });
}

}  // namespace ctxpool::ops
