// Neural-network functions: softmax, log_softmax, layer_norm, dropout, cross_entropy.
// Forward passes are fused row kernels; backward formulas are written with ops, so they work on any
// device and can themselves be differentiated (create_graph).
#include "core/random.h"
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// Runs a row kernel over `dim` of x: dim moved last, made contiguous, result moved back.
template <typename RowKernel>
Tensor along_dim(const Tensor& x, int64_t dim, const RowKernel& row_kernel) {
  autograd::NoGradGuard no_grad;
  const int64_t last = x.dim() ? x.dim() - 1 : 0;
  const Tensor moved = x.detach().transpose(dim, last).contiguous();
  Tensor out = new_empty(moved.sizes(), x.dtype(), x.device());
  row_kernel(moved, out);
  return out.transpose(dim, last);
}

Tensor softmax_impl(const Tensor& x, int64_t dim_in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_floating(name, x);
  const auto softmax_rows = kernel(&Kernels::softmax_rows, name, x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), name);
  Tensor out = along_dim(x, dim, [&](const Tensor& in, const Tensor& o) { softmax_rows(in, o, log); });
  if (log) {
    // d log_softmax: g - softmax * sum(g)
    return record(name, {x}, out, [dim](const Tensor& g, const LambdaNode& n) {
      const Tensor y = n.saved_output();
      return Grads{sub(g, mul(exp(y), sum(g, {dim}, true)))};
    }, true);
  }
  // d softmax: y * (g - sum(g * y))
  return record(name, {x}, out, [dim](const Tensor& g, const LambdaNode& n) {
    const Tensor y = n.saved_output();
    return Grads{mul(y, sub(g, sum(mul(g, y), {dim}, true)))};
  }, true);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_floating("layer_norm", x);
  const auto layer_norm_rows = kernel(&Kernels::layer_norm_rows, "layer_norm", x);
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  CTXPOOL_CHECK(k >= 1 && x.dim() >= k &&
                    Shape(x.sizes().end() - k, x.sizes().end()) == normalized_shape,
                "layer_norm: input of shape ", x.sizes(), " does not end with normalized_shape ",
                normalized_shape);
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    check_same("layer_norm", x, *p);
    CTXPOOL_CHECK(p->sizes() == normalized_shape, "layer_norm: ", p == &weight ? "weight" : "bias",
                  " has shape ", p->sizes(), " but normalized_shape is ", normalized_shape);
  }
  const int64_t cols = shape_numel(normalized_shape);
  const int64_t rows = cols ? x.numel() / cols : 0;

  Tensor y = new_empty(x.sizes(), x.dtype(), x.device());
  Tensor mean_t = new_empty({rows}, x.dtype(), x.device());
  Tensor rstd_t = new_empty({rows}, x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    layer_norm_rows(x.detach().contiguous(), weight.defined() ? weight.detach().contiguous() : Tensor(),
                    bias.defined() ? bias.detach().contiguous() : Tensor(), eps, y, mean_t, rstd_t);
  }
  std::vector<int64_t> norm_dims, batch_dims;
  for (int64_t d = 0; d < x.dim(); ++d) (d < x.dim() - k ? batch_dims : norm_dims).push_back(d);

  return record("layer_norm", {x, weight, bias}, y,
                [sx = SavedTensor(x), sw = SavedTensor(weight), mean_t, rstd_t, normalized_shape, norm_dims,
                 batch_dims, eps](const Tensor& g, const LambdaNode& n) {
    const Tensor in = sx.unpack("layer_norm"), w = sw.unpack("layer_norm");
    if (!autograd::GradMode::is_enabled()) {
      // The usual case: one fused pass.
      const Tensor gc = g.contiguous();
      Tensor gx = n.needs_input_grad(0) ? new_empty(in.sizes(), in.dtype(), in.device()) : Tensor();
      Tensor gw = n.needs_input_grad(1) ? new_empty(normalized_shape, in.dtype(), in.device()) : Tensor();
      Tensor gb = n.needs_input_grad(2) ? new_empty(normalized_shape, in.dtype(), in.device()) : Tensor();
      kernel(&Kernels::layer_norm_backward_rows, "layer_norm backward", in)(
          in.contiguous(), w.defined() ? w.contiguous() : Tensor(), mean_t, rstd_t, gc, gx, gw, gb);
      return Grads{gx, gw, gb};
    }
    // create_graph: the same formula with ops, the statistics recomputed from x so that they carry
    // their dependence on it (second derivatives).
    const Tensor mu = mean(in, norm_dims, true);
    const Tensor centered = sub(in, mu);
    const Tensor rstd = rsqrt(add(mean(mul(centered, centered), norm_dims, true), scalar_like(eps, in)));
    const Tensor xhat = mul(centered, rstd);
    const Tensor gxhat = w.defined() ? mul(g, w) : g;
    Tensor gx, gw, gb;
    if (n.needs_input_grad(0)) {
      // dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))
      gx = mul(rstd, sub(sub(gxhat, mean(gxhat, norm_dims, true)),
                         mul(xhat, mean(mul(gxhat, xhat), norm_dims, true))));
    }
    if (n.needs_input_grad(1)) gw = batch_dims.empty() ? mul(g, xhat) : sum(mul(g, xhat), batch_dims);
    if (n.needs_input_grad(2)) gb = batch_dims.empty() ? g : sum(g, batch_dims);
    return Grads{gx, gw, gb};
  });
}

Tensor uniform(const Shape& sizes, const TensorOptions& options) {
  CTXPOOL_CHECK(is_floating(options.dtype()), "uniform: dtype must be floating, got ", options.dtype());
  Tensor out = empty(sizes, TensorOptions(options.dtype()).device(options.device()));
  const auto [key, first] = default_generator().reserve(static_cast<uint64_t>((out.numel() + 3) / 4));
  kernel(&Kernels::uniform, "uniform", out)(out, first, key);
  if (options.requires_grad()) out.requires_grad_(true);
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  check_floating("dropout", x);
  CTXPOOL_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return mul(x, zeros_like(x));
  // mask = (u >= p) / (1 - p), drawn from the seeded default generator where x lives.
  const Tensor u = uniform(x.sizes(), TensorOptions(x.dtype()).device(x.device()));
  const Tensor mask = mul(ge(u, scalar_like(p, u)).to(x.dtype()), scalar_like(1.0 / (1.0 - p), x));
  return mul(x, mask);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, Reduction reduction) {
  check_floating("cross_entropy", logits);
  check_defined("cross_entropy", target, "target");
  check_same_device("cross_entropy", logits, target);
  const auto cross_entropy_rows = kernel(&Kernels::cross_entropy_rows, "cross_entropy", logits);
  CTXPOOL_CHECK(logits.dim() == 2, "cross_entropy: logits must be 2-D [N, C], got ", logits.sizes(),
                " (reshape to [-1, C] first)");
  CTXPOOL_CHECK(target.dtype() == kInt64, "cross_entropy: target must be int64 class indices, got ",
                target.dtype());
  CTXPOOL_CHECK(target.dim() == 1 && target.sizes()[0] == logits.sizes()[0],
                "cross_entropy: target of shape ", target.sizes(), " does not match logits ",
                logits.sizes(), " (expected [", logits.sizes()[0], "])");
  const int64_t n = logits.sizes()[0], c = logits.sizes()[1];
  const Tensor tgt = target.contiguous();
  // Which rows count, and their targets made safe for the backward, with ops on the targets' device
  // (the targets stay there; only two counts come back to the host, in one copy).
  Tensor row_weight, targets;
  double count = 0;
  {
    autograd::NoGradGuard no_grad;
    const Tensor counted = ne(tgt, scalar_like(static_cast<double>(ignore_index), tgt));
    const Tensor in_range = logical_and(ge(tgt, scalar_like(0, tgt)), lt(tgt, scalar_like(static_cast<double>(c), tgt)));
    const Tensor bad = logical_and(counted, logical_not(in_range));
    const std::vector<int64_t> counts =
        n > 0 ? stack({sum(counted.to(kInt64)), sum(bad.to(kInt64))}).to_vector<int64_t>() : std::vector<int64_t>{0, 0};
    if (counts[1] > 0) {
      const Tensor host = tgt.to(kCPU);  // the error path: find the first bad target
      for (int64_t i = 0; i < n; ++i) {
        const int64_t t = host.data_ptr<int64_t>()[i];
        CTXPOOL_CHECK(t == ignore_index || (t >= 0 && t < c), "cross_entropy: target ", t, " at position ", i,
                      " is out of range for ", c, " classes");
      }
    }
    row_weight = counted.to(logits.dtype());  // 1 for counted rows, 0 for ignored ones
    targets = where(counted, tgt, zeros({}, TensorOptions(kInt64).device(tgt.device())));
    count = static_cast<double>(counts[0]);
  }
  Tensor losses = new_empty({n}, logits.dtype(), logits.device());
  cross_entropy_rows(logits.detach().contiguous(), tgt, ignore_index, losses);

  Tensor out;
  double scale = 1.0;  // of each counted row's gradient
  {
    autograd::NoGradGuard no_grad;
    if (reduction == Reduction::None) {
      out = losses;
    } else {
      out = sum(losses);
      if (reduction == Reduction::Mean) {
        // An all-ignored batch (a fully padded one): the loss is 0 / 0 = NaN, as in PyTorch, but the
        // gradient is 0 (no row counts), so that such a batch cannot put NaN into the parameters.
        out = mul(out, scalar_like(1.0 / count, out));
        scale = count > 0 ? 1.0 / count : 0.0;
      }
    }
  }
  return record("cross_entropy", {logits}, out,
                [sl = SavedTensor(logits), row_weight, targets, scale, reduction](const Tensor& g, const LambdaNode&) {
    // d loss_i / d logits_i = softmax(logits_i) - one_hot(target_i), for counted rows.
    const Tensor x = sl.unpack("cross_entropy");
    Tensor w = mul(row_weight, scalar_like(scale, row_weight));
    w = reduction == Reduction::None ? mul(w, g) : mul(w, g.reshape({1}));
    if (!autograd::GradMode::is_enabled()) {
      Tensor dx = new_empty(x.sizes(), x.dtype(), x.device());
      kernel(&Kernels::cross_entropy_backward_rows, "cross_entropy backward", x)(x.contiguous(), targets,
                                                                                 w.contiguous(), dx);
      return Grads{dx};
    }
    const Tensor diff = sub(softmax(x, 1), one_hot(targets, x.sizes()[1], x.dtype()));
    return Grads{mul(diff, unsqueeze(w, 1))};
  });
}

}  // namespace ctxpool::ops
