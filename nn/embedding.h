// Embedding: a table [num_embeddings, dim] looked up by int64 indices. Initialised N(0, 1).
#pragma once
#include "nn/module.h"

namespace ctxpool::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, DType dtype = kFloat32);
  // indices int64 [...] -> [..., dim]
  Tensor forward(const Tensor& indices) override;

  Tensor weight;
  int64_t num_embeddings, dim;
};

}  // namespace ctxpool::nn
