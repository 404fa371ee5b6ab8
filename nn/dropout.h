// Dropout: zeroes elements with probability p while training (scaling the rest); identity in eval.
#pragma once
#include "nn/module.h"
#include "ops/ops.h"

namespace ctxpool::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5) : Module("Dropout"), p(p) {
    CTXPOOL_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
  }
  Tensor forward(const Tensor& x) override { return ops::dropout(x, p, is_training()); }
  double p;
};

}  // namespace ctxpool::nn
