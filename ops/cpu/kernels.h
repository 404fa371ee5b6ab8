// CPU kernels. Each takes already-checked tensors and writes into a preallocated output; the ops in
// ops/*.cpp do the checking, allocation and autograd. The CUDA backend mirrors these signatures.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/tensor.h"
#include "ops/ops.h"

namespace ctxpool::cpu {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Abs, Sign,
  GeluErf, GeluTanh, GeluErfGrad, GeluTanhGrad,  // *Grad: the derivative d gelu / dx
  LogicalNot
};
enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd  // these write bool
};

// x -> out (same shape; out may have any strides).
void unary(UnaryOp op, const Tensor& x, const Tensor& out);
// a, b broadcast to out.sizes() -> out.
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
// cond (bool), a, b broadcast to out.sizes() -> out.
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
void clamp(const Tensor& x, double lo, double hi, const Tensor& out);
// src broadcast to dst.sizes(), converting dtype -> dst (any strides).
void copy(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);

// x contiguous [rows, cols] -> out [rows]: the sum of each row (float accumulated in double).
void sum_rows(const Tensor& x, const Tensor& out);
// x contiguous [outer, reduce, inner] -> out [outer, inner]: sums over the middle dim without moving
// data (the backward of a broadcast bias, sums over the batch).
void sum_middle(const Tensor& x, int64_t outer, int64_t reduce, int64_t inner, const Tensor& out);
// x contiguous [rows, cols] -> values [rows], indices int64 [rows] of the first max (or min).
void max_rows(const Tensor& x, const Tensor& values, const Tensor& indices, bool find_max);

// out[b] = a[b] @ b[b] for every batch index b (batch dims already broadcast in the strides).
// a: [..., M, K], b: [..., K, N], out contiguous [..., M, N].
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);
// Whether the last two dims of t can go to gemm without a copy (row- or column-major with a unit stride).
bool matmul_operand_ok(const Tensor& t);

// x contiguous [rows, cols] -> out [rows, cols]: softmax (or log_softmax) of each row.
void softmax_rows(const Tensor& x, const Tensor& out, bool log);
// x contiguous [rows, cols] -> y [rows, cols], mean [rows], rstd [rows]; weight/bias [cols] optional.
void layer_norm_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     const Tensor& y, const Tensor& mean, const Tensor& rstd);
// Attention probabilities in place: scores [rows = batch * T, S] -> softmax(scale * scores) per row;
// with causal, row i of each query block (i = row % T) sees keys j <= i only (others become 0).
void attention_softmax_rows(const Tensor& scores, int64_t t, double scale, bool causal);
// p, dp [rows, S] -> dp := scale * p * (dp - sum(p * dp)) per row (the softmax backward, in place).
void softmax_backward_rows(const Tensor& p, const Tensor& dp, double scale);
// The layer_norm backward in one pass: x, g contiguous [rows, cols], mean/rstd [rows], weight [cols]
// (optional) -> dx [rows, cols] (optional), dweight/dbias [cols] (optional). Column sums are formed
// over fixed blocks of rows and added in block order: deterministic for any thread count.
void layer_norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                              const Tensor& g, const Tensor& dx, const Tensor& dweight, const Tensor& dbias);
// The cross_entropy backward: logits [N, C], target [N], row_scale [N] (0 for ignored rows) ->
// dlogits [N, C] = (softmax(logits) - one_hot(target)) * row_scale.
void cross_entropy_backward_rows(const Tensor& logits, const Tensor& target, const Tensor& row_scale,
                                 const Tensor& dlogits);
// logits contiguous [N, C], target [N] -> loss [N] (0 where target == ignore_index).
void cross_entropy_rows(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                        const Tensor& loss);

// Local causal attention over contiguous q, k [BH, T, D], v [BH, T, Dv] (ops/cpu/local_attention.cpp):
// -> probs [BH, T, W] (slot c holds key j = i - W + 1 + c; slots before the sequence start are 0),
//    out [BH, T, Dv].
void local_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale,
                             const Tensor& probs, const Tensor& out);
// g [BH, T, Dv] contiguous, probs from the forward -> dq, dk [BH, T, D], dv [BH, T, Dv] (each optional).
void local_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                              const Tensor& g, int64_t window, double scale, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv);

// Adaptive context pooling (ops/cpu/context_pool.cpp), options already resolved. A window reaches
// min(K, n - 1) tokens back (and forward when bidirectional); its slots are the tokens it can hold.
inline int64_t context_pool1d_reach(int64_t n, const ops::ContextPool1dOptions& o) {
  return std::min<int64_t>(o.window, std::max<int64_t>(n - 1, 0));
}
inline int64_t context_pool1d_slots(int64_t n, const ops::ContextPool1dOptions& o) {
  return o.causal ? context_pool1d_reach(n, o) + 1 : 2 * context_pool1d_reach(n, o) + 1;
}
// x [B, N, d], a, b [B, N] contiguous -> y [B, N, d], coef [B, N, S] (P_i(j) = g_i(j) w_j / Z_i; slot c
// holds j = i - reach + c; 0 outside the sequence).
void context_pool1d_forward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                            const Tensor& y, const Tensor& coef);
// gy [B, N, d] contiguous, coef from the forward -> gx [B, N, d], ga, gb [B, N] (each optional).
void context_pool1d_backward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                             const Tensor& coef, const Tensor& gy, const Tensor& gx, const Tensor& ga,
                             const Tensor& gb);

// weight [V, D] contiguous, indices [N] contiguous -> out [N, D].
void embedding(const Tensor& weight, const Tensor& indices, const Tensor& out);
// grad [N, D], indices [N] -> out [V, D] (zeroed first): out[indices[i]] += grad[i], in index order.
void embedding_backward(const Tensor& grad, const Tensor& indices, const Tensor& out);
// out[...i_d...] = x[...index[...]...] along dim; out has index's shape.
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// out (a copy of x) [..index[...]..] += src[...] along dim.
void scatter_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace ctxpool::cpu
