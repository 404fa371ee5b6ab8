// Helpers shared by the op families: input checks with clear messages, output allocation, and the
// names every op file uses from autograd.
#pragma once
#include <initializer_list>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/record.h"
#include "autograd/saved_tensor.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace ctxpool::ops {

using autograd::LambdaNode;
using autograd::record;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
  CTXPOOL_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

inline void check_floating(const char* op, const Tensor& t) {
  check_defined(op, t);
  CTXPOOL_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (float32 or float64), got ",
                t.dtype(), " with shape ", t.sizes());
}

// Same dtype and device, named in the message.
inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  CTXPOOL_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.sizes(), " ", a.dtype(),
                " vs ", b.sizes(), " ", b.dtype(), " (convert one with .to(dtype))");
  CTXPOOL_CHECK(a.device() == b.device(), op, ": device mismatch: ", a.sizes(), " on ", a.device(),
                " vs ", b.sizes(), " on ", b.device(), " (move one with .to(device))");
}

// Same device (any dtypes: an index tensor and the tensor it indexes).
inline void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  CTXPOOL_CHECK(a.device() == b.device(), op, ": device mismatch: ", a.sizes(), " ", a.dtype(), " on ", a.device(),
                " vs ", b.sizes(), " ", b.dtype(), " on ", b.device(), " (move one with .to(device))");
}

inline Tensor new_empty(const Shape& sizes, DType dtype, Device device) {
  return empty(sizes, TensorOptions(dtype).device(device));
}

// In-place ops cannot be seen by autograd: refuse them on tensors that need grad while grad mode is on.
inline void check_inplace(const char* op, const Tensor& t) {
  check_defined(op, t);
  CTXPOOL_CHECK(!(autograd::GradMode::is_enabled() && t.requires_grad()), op,
                ": in-place change of a tensor that requires grad (shape ", t.sizes(),
                ") would make its gradient wrong; do it under NoGradGuard (e.g. in an optimizer "
                "step) or use the out-of-place op");
}

// Sorted, unique, wrapped dims; empty `dims` means all dims.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace ctxpool::ops
