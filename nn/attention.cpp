#include "nn/attention.h"

#include "ops/ops.h"

namespace ctxpool::nn {

MultiheadAttention::MultiheadAttention(int64_t d, int64_t h, bool c, DType dtype)
    : Module("MultiheadAttention"), dim(d), heads(h), causal(c) {
  CTXPOOL_CHECK(h > 0 && d % h == 0, "MultiheadAttention: dim ", d, " is not divisible by ", h, " heads");
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, dtype));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, dtype));
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.dim() == 3 && x.sizes()[2] == dim, "MultiheadAttention: expected input [B, T, ", dim,
                "], got ", x.sizes());
  const int64_t b = x.sizes()[0], t = x.sizes()[1], hd = dim / heads;
  // [B, T, 3d] -> [B, T, 3, heads, hd] -> [3, B, heads, T, hd]
  const Tensor qkv_out = qkv->forward(x).reshape({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  const Tensor y = ops::scaled_dot_product_attention(qkv_out.select(0, 0), qkv_out.select(0, 1),
                                                     qkv_out.select(0, 2), causal);
  // [B, heads, T, hd] -> [B, T, heads, hd] -> [B, T, d]
  return proj->forward(y.permute({0, 2, 1, 3}).reshape({b, t, dim}));
}

}  // namespace ctxpool::nn
