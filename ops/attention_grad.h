// The create_graph backward shared by the fused attention ops (scaled_dot_product_attention,
// local_attention): their gradients written with differentiable ops from the probabilities P, so
// the gradient carries its own graph (double backward).
//   dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = scale dS K,  dK = scale dS^T Q,  dV = P^T dO
#pragma once
#include "ops/op_utils.h"

namespace ctxpool::ops {

// p [..., T, S] (recomputed with ops), q [..., T, D], k [..., S, D], v [..., S, Dv], g = dO [..., T, Dv]
// -> {dq, dk, dv}, each only where node n needs it.
inline Grads attention_grads_composite(const Tensor& p, const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& g, double scale, const LambdaNode& n) {
  const Tensor dp = matmul(g, transpose(v, -1, -2));
  const Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));
  const Tensor sc = scalar_like(scale, q);
  return Grads{n.needs_input_grad(0) ? mul(matmul(ds, k), sc) : Tensor(),
               n.needs_input_grad(1) ? mul(matmul(transpose(ds, -1, -2), q), sc) : Tensor(),
               n.needs_input_grad(2) ? matmul(transpose(p, -1, -2), g) : Tensor()};
}

}  // namespace ctxpool::ops
