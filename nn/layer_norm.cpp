#include "nn/layer_norm.h"

#include "ops/ops.h"

namespace ctxpool::nn {

LayerNorm::LayerNorm(int64_t d, double e, bool affine, DType dtype) : Module("LayerNorm"), dim(d), eps(e) {
  CTXPOOL_CHECK(d > 0, "LayerNorm: dim must be positive, got ", d);
  if (affine) {
    weight = register_parameter("weight", ones({d}, dtype));
    bias = register_parameter("bias", zeros({d}, dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return ops::layer_norm(x, {dim}, weight, bias, eps); }

}  // namespace ctxpool::nn
