// Multi-head attention over [B, T, d] sequences, in three kinds:
//   full           softmax(q k^T / sqrt(hd)) v, one fused op (causal for language models);
//   local          a sliding window: query i sees the W keys i - W < j <= i, O(T W d) (ops::local_attention);
//   adaptive_span  full attention whose probabilities are multiplied by a learned per-head soft span
//                  mask and renormalised (nn/adaptive_span.h).
// The projections are one fused QKV linear map, or, with split_qkv, a query map and a key/value map,
// so that queries and keys/values can read different inputs (ContextPool's `pooled: kv`) at the
// same FLOPs.
#pragma once
#include <memory>
#include <string>

#include "nn/adaptive_span.h"
#include "nn/linear.h"

namespace ctxpool::nn {

enum class AttentionKind { Full, Local, AdaptiveSpan };
AttentionKind attention_kind_from_string(const std::string& name);  // "full", "local", "adaptive_span"
const char* to_string(AttentionKind kind);

struct AttentionOptions {
  int64_t dim = 128;
  int64_t heads = 4;
  bool causal = true;
  AttentionKind kind = AttentionKind::Full;
  int64_t local_window = 32;   // local: W keys per query, the query's own included
  AdaptiveSpanOptions span = {};  // adaptive_span
  bool split_qkv = false;      // separate "q" [d, d] and "kv" [2d, d] projections instead of "qkv" [3d, d]
};

class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const AttentionOptions& options, DType dtype = kFloat32);
  MultiheadAttention(int64_t dim, int64_t heads, bool causal, DType dtype = kFloat32);
  // Self-attention: x [B, T, d] -> [B, T, d].
  Tensor forward(const Tensor& x) override;
  // Queries from x_query, keys and values from x_kv (both [B, T, d]); needs split_qkv.
  Tensor forward(const Tensor& x_query, const Tensor& x_kv);

  std::shared_ptr<Linear> qkv, q, kv, proj;  // qkv, or q and kv (split_qkv)
  std::shared_ptr<AdaptiveSpanMask> span;    // adaptive_span only
  AttentionOptions options;
  int64_t dim, heads;
  bool causal;

 private:
  // q, k, v [B, heads, T, hd] -> [B, T, d], by the configured kind.
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t b, int64_t t);
};

}  // namespace ctxpool::nn
