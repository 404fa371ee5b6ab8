#include "nn/sequential.h"

#include "ops/ops.h"

namespace ctxpool::nn {

Tensor GELU::forward(const Tensor& x) { return ops::gelu(x, approximate); }
Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }
Tensor Tanh::forward(const Tensor& x) { return ops::tanh(x); }

}  // namespace ctxpool::nn
