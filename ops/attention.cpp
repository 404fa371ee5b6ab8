// Scaled dot-product attention as one op with its own backward: the probabilities P are computed
// once, saved, and reused by the backward (softmax is not materialised twice). Where the device's
// table has fused kernels (CUDA: ops/cuda/flash_attention.cu) and the head dims fit them, P is never
// formed at all: the forward keeps each row's log-sum-exp and the backward recomputes P from it.
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

// Whether q's device has fused kernels that take these sizes.
bool fused_attention_fits(const Tensor& q, int64_t bh, int64_t t, int64_t s_len, int64_t d, int64_t dv) {
  const Kernels& table = kernels(q.device());
  return table.flash_attention_forward != nullptr && table.flash_attention_backward != nullptr && bh > 0 && t > 0 &&
         s_len > 0 && d > 0 && d <= kFlashMaxHeadDim && dv <= kFlashMaxHeadDim;
}

// The fused path: q, k, v as [BH, T, D] etc., the output and each row's log-sum-exp; the backward
// recomputes the probabilities from them.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale, int64_t bh,
                       const Shape& out_sizes) {
  const int64_t nd = q.dim(), t = q.sizes()[nd - 2], s_len = k.sizes()[nd - 2];
  const int64_t d = q.sizes()[nd - 1], dv = v.sizes()[nd - 1];
  Tensor out = new_empty(out_sizes, q.dtype(), q.device());
  Tensor lse = new_empty({bh, t}, q.dtype(), q.device());
  {
    autograd::NoGradGuard no_grad;
    kernel(&Kernels::flash_attention_forward, "scaled_dot_product_attention", q)(
        reshape(contiguous(q.detach()), {bh, t, d}), reshape(contiguous(k.detach()), {bh, s_len, d}),
        reshape(contiguous(v.detach()), {bh, s_len, dv}), scale, causal, reshape(out, {bh, t, dv}), lse);
  }
  return record("scaled_dot_product_attention", {q, k, v}, out,
                [sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v), lse, causal, scale, bh](
                    const Tensor& g, const LambdaNode& n) {
    const Tensor q = sq.unpack("attention"), k = sk.unpack("attention"), v = sv.unpack("attention");
    if (autograd::GradMode::is_enabled())  // create_graph: the same formulas with ops
      return attention_grads_composite(attention_probs_composite(q, k, causal, scale), q, k, v, g, scale, n);
    const int64_t nd = q.dim(), t = q.sizes()[nd - 2], s_len = k.sizes()[nd - 2];
    const int64_t d = q.sizes()[nd - 1], dv = v.sizes()[nd - 1];
    Tensor dq = new_empty(q.sizes(), q.dtype(), q.device()), dk = new_empty(k.sizes(), k.dtype(), k.device());
    Tensor dvv = new_empty(v.sizes(), v.dtype(), v.device()), delta = new_empty({bh, t}, q.dtype(), q.device());
    kernel(&Kernels::flash_attention_backward, "scaled_dot_product_attention backward", q)(
        reshape(contiguous(q), {bh, t, d}), reshape(contiguous(k), {bh, s_len, d}),
        reshape(contiguous(v), {bh, s_len, dv}), reshape(contiguous(n.saved_output()), {bh, t, dv}), lse,
        reshape(contiguous(g), {bh, t, dv}), scale, causal, delta, reshape(dq, {bh, t, d}),
        reshape(dk, {bh, s_len, d}), reshape(dvv, {bh, s_len, dv}));
    return Grads{n.needs_input_grad(0) ? dq : Tensor(), n.needs_input_grad(1) ? dk : Tensor(),
                 n.needs_input_grad(2) ? dvv : Tensor()};
  }, /*save_output=*/true);
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
  int64_t bh = 1;
  for (int64_t b : batch) bh *= b;
  if (fused_attention_fits(q, bh, t, s_len, q.sizes()[nd - 1], dv))
    return fused_attention(q, k, v, causal, scale, bh, out_sizes);
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
