// 2-D adaptive context pooling: the fused op on an image (or token) grid, its options, and the naive
// reference with plain ops. The 1-D op (ops/context_pool.cpp) is the same method on a line;
// ../shared/PAPER.md ("2-D (images) and ConvNets") specifies both.
#include <cmath>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

ContextPool2dOptions ContextPool2dOptions::resolved() const {
  ContextPool2dOptions o = *this;
  CTXPOOL_CHECK(window >= 0, "context_pool2d: window K must be >= 0, got ", window);
  CTXPOOL_CHECK(stride >= 1, "context_pool2d: stride must be >= 1, got ", stride);
  CTXPOOL_CHECK(std::isfinite(s_min) && s_min >= 1e-3, "context_pool2d: s_min must be a positive number >= 1e-3, "
                "got ", s_min);
  if (!o.s_max) o.s_max = std::max(static_cast<double>(window) / 2.0, s_min);
  CTXPOOL_CHECK(std::isfinite(*o.s_max) && *o.s_max >= s_min, "context_pool2d: s_max must be >= s_min (", s_min,
                "), got ", *o.s_max);
  if (!o.s_fixed) o.s_fixed = (s_min + *o.s_max) / 2.0;
  CTXPOOL_CHECK(std::isfinite(*o.s_fixed) && *o.s_fixed >= 1e-3,
                "context_pool2d: s_fixed must be a positive number >= 1e-3, got ", *o.s_fixed);
  CTXPOOL_CHECK(std::isfinite(eps) && eps >= 0, "context_pool2d: eps must be a finite number >= 0, got ", eps);
  return o;
}

namespace {

// x [B, H, W, d], a [B, H, W], b [B, Ho, Wo], one dtype and device.
void check_inputs(const char* op, const Tensor& x, const Tensor& a, const Tensor& b, const ContextPool2dOptions& o) {
  check_floating(op, x);
  check_same(op, x, a);
  check_same(op, x, b);
  CTXPOOL_CHECK(x.dim() == 4, op, ": expected features x [B, H, W, d] (channels last), got ", x.sizes());
  const int64_t h = x.sizes()[1], w = x.sizes()[2];
  const Shape want_a{x.sizes()[0], h, w};
  const Shape want_b{x.sizes()[0], context_pool2d_out_size(h, o), context_pool2d_out_size(w, o)};
  CTXPOOL_CHECK(a.sizes() == want_a, op, ": the weight logits a ", a.sizes(), " must be [B, H, W] = ", want_a,
                " for x ", x.sizes());
  CTXPOOL_CHECK(b.sizes() == want_b, op, ": the support logits b ", b.sizes(), " must be [B, Ho, Wo] = ", want_b,
                " for x ", x.sizes(), " with stride ", o.stride, " (one per output position)");
}

}  // namespace

Tensor context_pool2d(const Tensor& x, const Tensor& a, const Tensor& b, const ContextPool2dOptions& options) {
  const ContextPool2dOptions o = options.resolved();
  check_inputs("context_pool2d", x, a, b, o);
  const auto forward = kernel(&Kernels::context_pool2d_forward, "context_pool2d", x);
  const int64_t batch = x.sizes()[0], h = x.sizes()[1], w = x.sizes()[2];
  const int64_t ho = context_pool2d_out_size(h, o), wo = context_pool2d_out_size(w, o);
  Tensor y = new_empty({batch, ho, wo, x.sizes()[3]}, x.dtype(), x.device());
  Tensor coef = new_empty({batch, ho, wo, context_pool2d_slots(h, w, o)}, x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    forward(x.detach().contiguous(), a.detach().contiguous(), b.detach().contiguous(), o, y, coef);
  }
  return record("context_pool2d", {x, a, b}, y,
                [sx = SavedTensor(x), sa = SavedTensor(a), sb = SavedTensor(b), coef, o](
                    const Tensor& g, const LambdaNode& node) {
    CTXPOOL_CHECK(!autograd::GradMode::is_enabled(),
                  "context_pool2d: second derivatives are not implemented (the fused backward is not "
                  "itself differentiable); use ops::context_pool2d_reference for double backward");
    const Tensor x = sx.unpack("context_pool2d"), a = sa.unpack("context_pool2d"), b = sb.unpack("context_pool2d");
    const Tensor gx = node.needs_input_grad(0) ? new_empty(x.sizes(), x.dtype(), x.device()) : Tensor();
    const Tensor ga = node.needs_input_grad(1) ? new_empty(a.sizes(), a.dtype(), a.device()) : Tensor();
    const Tensor gb = node.needs_input_grad(2) ? new_empty(b.sizes(), b.dtype(), b.device()) : Tensor();
    kernel(&Kernels::context_pool2d_backward, "context_pool2d backward", x)(
        x.contiguous(), a.contiguous(), b.contiguous(), o, coef, g.contiguous(), gx, ga, gb);
    return Grads{gx, ga, gb};
  });
}

// Dense, with plain ops: for every output centre c_q and every pixel j, the window mask, g_q(j) and
// w_j -> c [B, Ho Wo, H W]; P = c / (rowsum(c) + eps); y = P x.
Tensor context_pool2d_reference(const Tensor& x, const Tensor& a, const Tensor& b,
                                const ContextPool2dOptions& options) {
  const ContextPool2dOptions o = options.resolved();
  check_inputs("context_pool2d_reference", x, a, b, o);
  const int64_t batch = x.sizes()[0], h = x.sizes()[1], w = x.sizes()[2], d = x.sizes()[3];
  const int64_t ho = context_pool2d_out_size(h, o), wo = context_pool2d_out_size(w, o);
  const TensorOptions opts = TensorOptions(x.dtype()).device(x.device());
  // Pixel and centre coordinates, row-major over each grid as the flattened tensors are.
  std::vector<double> prow, pcol, crow, ccol;
  for (int64_t i = 0; i < h * w; ++i) {
    prow.push_back(static_cast<double>(i / w));
    pcol.push_back(static_cast<double>(i % w));
  }
  for (int64_t q = 0; q < ho * wo; ++q) {
    crow.push_back(static_cast<double>((q / wo) * o.stride));
    ccol.push_back(static_cast<double>((q % wo) * o.stride));
  }
  auto column = [&](const std::vector<double>& v, Shape shape) { return from_vector(v, shape, opts); };
  const Tensor dy = sub(column(crow, {ho * wo, 1}), column(prow, {1, h * w}));  // [HoWo, HW]
  const Tensor dx = sub(column(ccol, {ho * wo, 1}), column(pcol, {1, h * w}));
  const Tensor ry = scalar_like(static_cast<double>(context_pool2d_reach(h, o)), dy);
  const Tensor rx = scalar_like(static_cast<double>(context_pool2d_reach(w, o)), dx);
  const Tensor in_window = logical_and(le(abs(dy), ry), le(abs(dx), rx));
  const Tensor dist2 = add(mul(dy, dy), mul(dx, dx));
  const Tensor wts = o.mode == ContextPoolMode::Uniform ? add(mul(a, scalar_like(0.0, a)), scalar_like(1.0, a))
                                                        : sigmoid(a);
  const Tensor s_flat = reshape(o.mode == ContextPoolMode::Full
                                    ? add(mul(sigmoid(b), scalar_like(*o.s_max - o.s_min, b)), scalar_like(o.s_min, b))
                                    : add(mul(b, scalar_like(0.0, b)), scalar_like(*o.s_fixed, b)),
                                {batch, ho * wo, 1});
  const Tensor g = exp(div(neg(dist2), mul(scalar_like(2.0, s_flat), mul(s_flat, s_flat))));  // [B, HoWo, HW]
  const Tensor c = where(in_window, mul(g, reshape(wts, {batch, 1, h * w})), zeros({1}, opts));
  const Tensor z = add(sum(c, {2}, true), scalar_like(o.eps, c));
  return reshape(matmul(div(c, z), reshape(x, {batch, h * w, d})), {batch, ho, wo, d});
}

}  // namespace ctxpool::ops
