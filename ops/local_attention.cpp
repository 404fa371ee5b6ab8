// Local (sliding-window) causal attention as one op: query i attends to the W keys
// i - W < j <= i. The kernels keep scores and probabilities as [BH, T, W], so time is O(T W D) and
// memory O(T W); the probabilities are saved for the backward (the kernels: Kernels::local_attention_*).
//
//   forward:  S[i,c] = scale * q_i . k_j (j = i - W + 1 + c), P = softmax over the valid c, O = P V
//   backward: dS = P * (dP - rowsum(dP * P)) with dP = dO V^T on the band; dQ = scale dS K,
//             dK = scale dS^T Q, dV = P^T dO
#include <algorithm>
#include <cmath>

#include "ops/attention_grad.h"
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// True outside the band i - W < j <= i, as a bool [T, T] (for the dense composite formula).
Tensor outside_band(int64_t t, int64_t window, Device device) {
  const Tensor pos = arange(t, TensorOptions(kInt64).device(device));
  const Tensor diff = sub(unsqueeze(pos, 1), unsqueeze(pos, 0));  // i - j
  return logical_not(logical_and(ge(diff, scalar_like(0, diff)), lt(diff, scalar_like(window, diff))));
}

// The probabilities with differentiable ops, as a dense masked [..., T, T] matrix. Used only
// under create_graph, so that second derivatives work; O(T^2) memory there.
Tensor local_probs_composite(const Tensor& q, const Tensor& k, int64_t window, double scale) {
  const Tensor s = mul(matmul(q, transpose(k, -1, -2)), scalar_like(scale, q));
  return softmax(masked_fill(s, outside_band(q.sizes()[q.dim() - 2], window, q.device()), -INFINITY), -1);
}

// x as the kernels read it: detached, contiguous [BH, T, last].
Tensor rows_ready(const Tensor& x, int64_t bh) {
  return x.detach().contiguous().reshape({bh, x.sizes()[x.dim() - 2], x.sizes().back()});
}

}  // namespace

Tensor local_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale) {
  check_floating("local_attention", q);
  check_same("local_attention", q, k);
  check_same("local_attention", q, v);
  const auto forward = kernel(&Kernels::local_attention_forward, "local_attention", q);
  CTXPOOL_CHECK(q.dim() >= 3 && k.dim() == q.dim() && v.dim() == q.dim(),
                "local_attention: expected q, k, v with the same number (>= 3) of dims [..., T, D], got ",
                q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  const int64_t nd = q.dim();
  const Shape batch(q.sizes().begin(), q.sizes().end() - 2);
  CTXPOOL_CHECK(Shape(k.sizes().begin(), k.sizes().end() - 2) == batch &&
                    Shape(v.sizes().begin(), v.sizes().end() - 2) == batch &&
                    k.sizes()[nd - 2] == q.sizes()[nd - 2] && k.sizes()[nd - 1] == q.sizes()[nd - 1] &&
                    v.sizes()[nd - 2] == q.sizes()[nd - 2],
                "local_attention: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(),
                " do not fit (expected q [..., T, D], k [..., T, D], v [..., T, Dv] with the same T)");
  CTXPOOL_CHECK(window >= 1, "local_attention: window must be >= 1, got ", window, " (q ", q.sizes(), ")");
  const int64_t t = q.sizes()[nd - 2], d = q.sizes()[nd - 1], dv = v.sizes()[nd - 1];
  const int64_t w = std::min(window, t);  // a window longer than the sequence sees all of it
  int64_t bh = 1;
  for (int64_t s : batch) bh *= s;
  if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(d));

  Shape out_sizes = batch;
  out_sizes.insert(out_sizes.end(), {t, dv});
  Tensor p = new_empty({bh, t, w}, q.dtype(), q.device());
  Tensor out = new_empty(out_sizes, q.dtype(), q.device());
  {
    autograd::NoGradGuard no_grad;
    forward(rows_ready(q, bh), rows_ready(k, bh), rows_ready(v, bh), w, scale, p,
            out.reshape({bh, t, dv}));  // a view: out is contiguous
  }

  return record("local_attention", {q, k, v}, out,
                [sq = SavedTensor(q), sk = SavedTensor(k), sv = SavedTensor(v), p, w, bh, scale](
                    const Tensor& g, const LambdaNode& n) {
    const Tensor q = sq.unpack("local_attention"), k = sk.unpack("local_attention"),
                 v = sv.unpack("local_attention");
    if (autograd::GradMode::is_enabled()) {
      // create_graph: the dense masked formulas with ops, so the gradient carries its own graph.
      return attention_grads_composite(local_probs_composite(q, k, w, scale), q, k, v, g, scale, n);
    }
    const Tensor q_rows = rows_ready(q, bh), k_rows = rows_ready(k, bh), v_rows = rows_ready(v, bh);
    Tensor dq, dk, dv;
    if (n.needs_input_grad(0)) dq = new_empty(q_rows.sizes(), q.dtype(), q.device());
    if (n.needs_input_grad(1)) dk = new_empty(k_rows.sizes(), k.dtype(), k.device());
    if (n.needs_input_grad(2)) dv = new_empty(v_rows.sizes(), v.dtype(), v.device());
    kernel(&Kernels::local_attention_backward, "local_attention backward", q)(
        q_rows, k_rows, v_rows, p, rows_ready(g, bh), w, scale, dq, dk, dv);
    return Grads{dq.defined() ? dq.reshape(q.sizes()) : Tensor(), dk.defined() ? dk.reshape(k.sizes()) : Tensor(),
                 dv.defined() ? dv.reshape(v.sizes()) : Tensor()};
  });
}

}  // namespace ctxpool::ops
