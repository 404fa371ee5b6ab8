#include "nn/embedding.h"

#include "nn/init.h"
#include "ops/ops.h"

namespace ctxpool::nn {

Embedding::Embedding(int64_t n, int64_t d, DType dtype) : Module("Embedding"), num_embeddings(n), dim(d) {
  CTXPOOL_CHECK(n > 0 && d > 0, "Embedding: sizes must be positive, got ", n, " x ", d);
  weight = register_parameter("weight", empty({n, d}, dtype));
  init::normal_(weight, 0.0, 1.0);
}

Tensor Embedding::forward(const Tensor& indices) { return ops::embedding(weight, indices); }

}  // namespace ctxpool::nn
