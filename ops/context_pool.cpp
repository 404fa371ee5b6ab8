// Adaptive context pooling (ContextPool) for sequences: the fused op, its options, and the naive
// reference written with plain ops. ../shared/PAPER.md specifies the method; docs/contextpool.md
// explains it as implemented, with the backward's derivation.
#include <cmath>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

ContextPoolMode context_pool_mode_from_string(const std::string& name) {
  if (name == "full") return ContextPoolMode::Full;
  if (name == "weights_only") return ContextPoolMode::WeightsOnly;
  if (name == "uniform") return ContextPoolMode::Uniform;
  detail::fail("context_pool: unknown mode \"", name, "\" (expected \"full\", \"weights_only\" or \"uniform\")");
}

const char* to_string(ContextPoolMode mode) {
  switch (mode) {
    case ContextPoolMode::Full: return "full";
    case ContextPoolMode::WeightsOnly: return "weights_only";
    case ContextPoolMode::Uniform: return "uniform";
  }
  return "?";
}

ContextPool1dOptions ContextPool1dOptions::resolved() const {
  ContextPool1dOptions o = *this;
  CTXPOOL_CHECK(window >= 0, "context_pool1d: window K must be >= 0, got ", window);
  // Below a thousandth of a token the Gaussian is a point mass, and s^3 underflows in the gradient.
  CTXPOOL_CHECK(std::isfinite(s_min) && s_min >= 1e-3, "context_pool1d: s_min must be a positive number >= 1e-3, "
                "got ", s_min);
  if (!o.s_max) o.s_max = std::max(static_cast<double>(window) / 2.0, s_min);
  CTXPOOL_CHECK(std::isfinite(*o.s_max) && *o.s_max >= s_min, "context_pool1d: s_max must be >= s_min (",
                s_min, "), got ", *o.s_max);
  if (!o.s_fixed) o.s_fixed = (s_min + *o.s_max) / 2.0;
  CTXPOOL_CHECK(std::isfinite(*o.s_fixed) && *o.s_fixed >= 1e-3, "context_pool1d: s_fixed must be a positive number >= 1e-3, got ",
                *o.s_fixed);
  CTXPOOL_CHECK(std::isfinite(eps) && eps >= 0, "context_pool1d: eps must be a finite number >= 0, got ", eps);
  return o;
}

namespace {

// x [B, N, d], a and b [B, N], one dtype and device.
void check_inputs(const char* op, const Tensor& x, const Tensor& a, const Tensor& b) {
  check_floating(op, x);
  check_same(op, x, a);
  check_same(op, x, b);
  CTXPOOL_CHECK(x.dim() == 3, op, ": expected features x [B, N, d], got ", x.sizes());
  const Shape want{x.sizes()[0], x.sizes()[1]};
  CTXPOOL_CHECK(a.sizes() == want && b.sizes() == want, op, ": predictor outputs a ", a.sizes(), " and b ",
                b.sizes(), " must both be [B, N] = ", want, " for x ", x.sizes());
}

}  // namespace

Tensor context_pool1d_support(const Tensor& b, const ContextPool1dOptions& options) {
  const ContextPool1dOptions o = options.resolved();
  check_floating("context_pool1d_support", b);
  if (o.mode != ContextPoolMode::Full) return add(mul(b, scalar_like(0.0, b)), scalar_like(*o.s_fixed, b));
  return add(mul(sigmoid(b), scalar_like(*o.s_max - o.s_min, b)), scalar_like(o.s_min, b));
}

Tensor context_pool1d(const Tensor& x, const Tensor& a, const Tensor& b, const ContextPool1dOptions& options) {
  const ContextPool1dOptions o = options.resolved();
  check_inputs("context_pool1d", x, a, b);
  const auto forward = kernel(&Kernels::context_pool1d_forward, "context_pool1d", x);
  const int64_t batch = x.sizes()[0], n = x.sizes()[1];
  Tensor y = new_empty(x.sizes(), x.dtype(), x.device());
  Tensor coef = new_empty({batch, n, context_pool1d_slots(n, o)}, x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    forward(x.detach().contiguous(), a.detach().contiguous(), b.detach().contiguous(), o, y, coef);
  }
  return record("context_pool1d", {x, a, b}, y,
                [sx = SavedTensor(x), sa = SavedTensor(a), sb = SavedTensor(b), coef, o](
                    const Tensor& g, const LambdaNode& node) {
    CTXPOOL_CHECK(!autograd::GradMode::is_enabled(),
                  "context_pool1d: second derivatives are not implemented (the fused backward is not "
                  "itself differentiable); use ops::context_pool1d_reference for double backward");
    const Tensor x = sx.unpack("context_pool1d"), a = sa.unpack("context_pool1d"), b = sb.unpack("context_pool1d");
    const Tensor gx = node.needs_input_grad(0) ? new_empty(x.sizes(), x.dtype(), x.device()) : Tensor();
    const Tensor ga = node.needs_input_grad(1) ? new_empty(a.sizes(), a.dtype(), a.device()) : Tensor();
    const Tensor gb = node.needs_input_grad(2) ? new_empty(b.sizes(), b.dtype(), b.device()) : Tensor();
    kernel(&Kernels::context_pool1d_backward, "context_pool1d backward", x)(
        x.contiguous(), a.contiguous(), b.contiguous(), o, coef, g.contiguous(), gx, ga, gb);
    return Grads{gx, ga, gb};
  });
}

// The dense formula, step by step, with plain ops: c [B, N, N] = band mask * g_i(j) * w_j,
// P = c / (rowsum(c) + eps), y = P x. Every input gets a (possibly zero) gradient.
Tensor context_pool1d_reference(const Tensor& x, const Tensor& a, const Tensor& b,
                                const ContextPool1dOptions& options) {
  const ContextPool1dOptions o = options.resolved();
  check_inputs("context_pool1d_reference", x, a, b);
  const int64_t n = x.sizes()[1];
  const TensorOptions float_opts = TensorOptions(x.dtype()).device(x.device());
  const Tensor pos = arange(n, kInt64).to(x.dtype()).to(x.device());
  const Tensor offset = sub(unsqueeze(pos, 1), unsqueeze(pos, 0));  // [N, N]: i - j
  const Tensor k = scalar_like(static_cast<double>(o.window), offset);
  const Tensor in_window = o.causal ? logical_and(ge(offset, scalar_like(0.0, offset)), le(offset, k))
                                    : le(abs(offset), k);
  const Tensor w = o.mode == ContextPoolMode::Uniform ? add(mul(a, scalar_like(0.0, a)), scalar_like(1.0, a))
                                                      : sigmoid(a);
  const Tensor s = unsqueeze(context_pool1d_support(b, o), 2);                                 // [B, N, 1]
  const Tensor g = exp(div(neg(mul(offset, offset)), mul(scalar_like(2.0, s), mul(s, s))));  // [B, N, N]
  const Tensor c = where(in_window, mul(g, unsqueeze(w, 1)), zeros({1}, float_opts));
  const Tensor z = add(sum(c, {2}, true), scalar_like(o.eps, c));
  return matmul(div(c, z), x);
}

}  // namespace ctxpool::ops
