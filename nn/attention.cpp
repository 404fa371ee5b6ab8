#include "nn/attention.h"

#include <cmath>

#include "ops/ops.h"

namespace ctxpool::nn {

AttentionKind attention_kind_from_string(const std::string& name) {
  if (name == "full") return AttentionKind::Full;
  if (name == "local") return AttentionKind::Local;
  if (name == "adaptive_span") return AttentionKind::AdaptiveSpan;
  detail::fail("attention: unknown kind \"", name, "\" (expected \"full\", \"local\" or \"adaptive_span\")");
}

const char* to_string(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::Full: return "full";
    case AttentionKind::Local: return "local";
    case AttentionKind::AdaptiveSpan: return "adaptive_span";
  }
  return "?";
}

MultiheadAttention::MultiheadAttention(const AttentionOptions& o, DType dtype)
    : Module("MultiheadAttention"), options(o), dim(o.dim), heads(o.heads), causal(o.causal) {
  CTXPOOL_CHECK(o.heads > 0 && o.dim > 0 && o.dim % o.heads == 0, "MultiheadAttention: dim ", o.dim,
                " is not divisible by ", o.heads, " heads");
  CTXPOOL_CHECK(o.kind != AttentionKind::Local || (o.local_window >= 1 && o.causal),
                "MultiheadAttention: local attention is causal and needs local_window >= 1, got ", o.local_window);
  if (o.split_qkv) {
    q = register_module("q", std::make_shared<Linear>(o.dim, o.dim, true, dtype));
    kv = register_module("kv", std::make_shared<Linear>(o.dim, 2 * o.dim, true, dtype));
  } else {
    qkv = register_module("qkv", std::make_shared<Linear>(o.dim, 3 * o.dim, true, dtype));
  }
  proj = register_module("proj", std::make_shared<Linear>(o.dim, o.dim, true, dtype));
  if (o.kind == AttentionKind::AdaptiveSpan)
    span = register_module("span", std::make_shared<AdaptiveSpanMask>(o.heads, o.span, dtype));
}

MultiheadAttention::MultiheadAttention(int64_t d, int64_t h, bool c, DType dtype)
    : MultiheadAttention(AttentionOptions{d, h, c}, dtype) {}

namespace {
void check_input(const Tensor& x, int64_t dim, const char* what) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 3 && x.sizes()[2] == dim, "MultiheadAttention: expected ", what,
                " [B, T, ", dim, "], got ", x.defined() ? shape_str(x.sizes()) : "undefined");
}
}  // namespace

Tensor MultiheadAttention::forward(const Tensor& x) {
  if (options.split_qkv) return forward(x, x);
  check_input(x, dim, "input");
  const int64_t b = x.sizes()[0], t = x.sizes()[1], hd = dim / heads;
  // [B, T, 3d] -> [B, T, 3, heads, hd] -> [3, B, heads, T, hd]
  const Tensor qkv_out = qkv->forward(x).reshape({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  return attend(qkv_out.select(0, 0), qkv_out.select(0, 1), qkv_out.select(0, 2), b, t);
}

Tensor MultiheadAttention::forward(const Tensor& x_query, const Tensor& x_kv) {
  CTXPOOL_CHECK(options.split_qkv, "MultiheadAttention: separate query and key/value inputs need split_qkv");
  check_input(x_query, dim, "queries' input");
  check_input(x_kv, dim, "keys' and values' input");
  CTXPOOL_CHECK(x_query.sizes() == x_kv.sizes(), "MultiheadAttention: query input ", x_query.sizes(),
                " and key/value input ", x_kv.sizes(), " differ in shape");
  const int64_t b = x_query.sizes()[0], t = x_query.sizes()[1], hd = dim / heads;
  const Tensor q_out = q->forward(x_query).reshape({b, t, heads, hd}).permute({0, 2, 1, 3});
  const Tensor kv_out = kv->forward(x_kv).reshape({b, t, 2, heads, hd}).permute({2, 0, 3, 1, 4});
  return attend(q_out, kv_out.select(0, 0), kv_out.select(0, 1), b, t);
}

Tensor MultiheadAttention::attend(const Tensor& qh, const Tensor& kh, const Tensor& vh, int64_t b, int64_t t) {
  Tensor y;
  switch (options.kind) {
    case AttentionKind::Full:
      y = ops::scaled_dot_product_attention(qh, kh, vh, causal);
      break;
    case AttentionKind::Local:
      y = ops::local_attention(qh, kh, vh, options.local_window);
      break;
    case AttentionKind::AdaptiveSpan: {
      // The probabilities with plain ops (the span mask needs them), then the mask, then P v.
      const double scale = 1.0 / std::sqrt(static_cast<double>(dim / heads));
      Tensor scores = ops::mul(ops::matmul(qh, ops::transpose(kh, -1, -2)), ops::scalar_like(scale, qh));
      if (causal) {
        const Tensor pos = arange(t, TensorOptions(kInt64).device(scores.device()));
        const Tensor future = ops::gt(ops::unsqueeze(pos, 0), ops::unsqueeze(pos, 1));
        scores = ops::masked_fill(scores, future, -INFINITY);
      }
      y = ops::matmul(span->forward(ops::softmax(scores, -1)), vh);
      break;
    }
  }
  // [B, heads, T, hd] -> [B, T, heads, hd] -> [B, T, d]
  return proj->forward(y.permute({0, 2, 1, 3}).reshape({b, t, dim}));
}

}  // namespace ctxpool::nn
