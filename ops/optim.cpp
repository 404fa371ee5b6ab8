// Optimizer updates as ops: checked here, then one fused kernel per parameter on its device
// (ops/cpu/optim.cpp, ops/cuda/optim.cu). They change p and the state in place, outside autograd.
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// p, grad and each state tensor: defined, floating, one dtype, one device, one shape; p and the state
// contiguous (they are allocated by the optimizer or the module).
void check_update_args(const char* op, const Tensor& p, const Tensor& grad, std::initializer_list<const Tensor*> state) {
  check_floating(op, p);
  check_same(op, p, grad);
  CTXPOOL_CHECK(grad.sizes() == p.sizes(), op, ": gradient of shape ", grad.sizes(), " for a parameter of shape ",
                p.sizes());
  CTXPOOL_CHECK(p.is_contiguous(), op, ": the parameter (shape ", p.sizes(), ") must be contiguous");
  for (const Tensor* s : state) {
    check_same(op, p, *s);
    CTXPOOL_CHECK(s->sizes() == p.sizes() && s->is_contiguous(), op, ": optimizer state of shape ", s->sizes(),
                  " (contiguous: ", s->is_contiguous(), ") for a parameter of shape ", p.sizes());
  }
}

}  // namespace

void adamw_update_(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWUpdate& u) {
  check_update_args("adamw_update_", p, grad, {&m, &v});
  CTXPOOL_CHECK(u.step >= 1, "adamw_update_: step must be >= 1 (the first update is step 1), got ", u.step);
  const auto update = kernel(&Kernels::adamw_update, "adamw_update_", p);
  autograd::NoGradGuard no_grad;
  update(p, grad.contiguous(), m, v, u);
  p.bump_version();
}

void sgd_update_(const Tensor& p, const Tensor& grad, const Tensor& buf, const SGDUpdate& u) {
  if (u.momentum != 0) {
    check_update_args("sgd_update_", p, grad, {&buf});
  } else {
    check_update_args("sgd_update_", p, grad, {});
  }
  const auto update = kernel(&Kernels::sgd_update, "sgd_update_", p);
  autograd::NoGradGuard no_grad;
  update(p, grad.contiguous(), u.momentum != 0 ? buf : Tensor(), u);
  p.bump_version();
}

}  // namespace ctxpool::ops
