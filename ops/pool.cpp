// 2-D pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d, with PyTorch's output sizes, padding
// rule and error cases. Each forward is one kernel over the (b, c) planes; each backward is an op of
// its own whose kernel is the forward's adjoint, and whose backward is the forward again (for max
// pooling: a gather at the saved indices), so every pooling differentiates twice.
#include <cmath>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

using Size2 = std::array<int64_t, 2>;

Shape shape_of(Size2 s) { return {s[0], s[1]}; }

// x is [B, C, H, W] or [C, H, W], with C, H, W > 0 (B may be 0), floating.
void check_pool_input(const char* op, const Tensor& x) {
  check_floating(op, x);
  const Shape& s = x.sizes();
  const bool ok = (x.dim() == 3 || x.dim() == 4) && s[x.dim() - 3] > 0 && s[x.dim() - 2] > 0 && s[x.dim() - 1] > 0;
  CTXPOOL_CHECK(ok, op, ": expected x [B, C, H, W] or [C, H, W] with C, H and W > 0, got shape ", s, " (",
                x.dtype(), " on ", x.device(), ")");
}

// PyTorch's pooling output size along one dim: floor (or ceil) of the window count, and with
// ceil_mode the last window must still start inside the input or its left padding.
int64_t pooled_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  const int64_t room = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  // Floor division: room can be negative (an input smaller than the kernel's span).
  int64_t out = (room >= 0 ? room / stride : -((-room + stride - 1) / stride)) + 1;
  if (ceil_mode && out > 0 && (out - 1) * stride >= in + pad) --out;
  return out;
}

// The windows of a max or average pooling of x (checked by check_pool_input), checked as PyTorch checks them.
Conv2dGeometry pool_geometry(const char* op, const Tensor& x, Size2 kernel, std::optional<Size2> stride_arg,
                             Size2 padding, Size2 dilation, bool ceil_mode) {
  const Size2 stride = stride_arg.value_or(kernel);
  const Shape& input = x.sizes();
  CTXPOOL_CHECK(kernel[0] > 0 && kernel[1] > 0, op, ": kernel size must be positive, got ", shape_of(kernel),
                " (input ", input, ")");
  CTXPOOL_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive, got ", shape_of(stride),
                " (input ", input, ")");
  CTXPOOL_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation must be positive, got ", shape_of(dilation),
                " (input ", input, ")");
  CTXPOOL_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 && padding[1] <= kernel[1] / 2,
                op, ": padding should be at most half of the kernel size, got padding ", shape_of(padding),
                " for kernel ", shape_of(kernel), " (input ", input, ")");
  const int64_t h = input[x.dim() - 2], w = input[x.dim() - 1];
  Conv2dGeometry g;
  g.kh = kernel[0], g.kw = kernel[1];
  g.stride_h = stride[0], g.stride_w = stride[1];
  g.pad_h = padding[0], g.pad_w = padding[1];
  g.dil_h = dilation[0], g.dil_w = dilation[1];
  g.h_out = pooled_size(h, g.kh, g.stride_h, g.pad_h, g.dil_h, ceil_mode);
  g.w_out = pooled_size(w, g.kw, g.stride_w, g.pad_w, g.dil_w, ceil_mode);
  CTXPOOL_CHECK(g.h_out > 0 && g.w_out > 0, op, ": input ", input, " gives an empty output of ",
                Shape{g.h_out, g.w_out}, " positions: the input padded by ", shape_of(padding),
                " is smaller than the window (kernel ", shape_of(kernel), ", dilation ", shape_of(dilation), ")");
  return g;
}

// x's sizes with the last two replaced by {h, w}.
Shape with_plane(const Shape& sizes, int64_t h, int64_t w) {
  Shape out = sizes;
  out[out.size() - 2] = h;
  out[out.size() - 1] = w;
  return out;
}

// ---- max pooling: the forward saves the argmax indices; its gradient is scattered to them ----

Tensor max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Shape& input_sizes);

// gather of the gradient at the indices: the backward of the scatter (and so max pooling's second derivative)
Tensor gather_at_indices(const Tensor& x_grad, const Tensor& indices) {
  const Shape& in = x_grad.sizes();
  const Shape& out = indices.sizes();
  const int64_t planes = shape_numel(in) / (in[in.size() - 2] * in[in.size() - 1]);
  const Tensor flat_grad = reshape(x_grad, {planes, in[in.size() - 2] * in[in.size() - 1]});
  const Tensor flat_indices = reshape(indices, {planes, out[out.size() - 2] * out[out.size() - 1]});
  return reshape(gather(flat_grad, 1, flat_indices), out);
}

// grad [..., h_out, w_out] -> [..., H, W]: each gradient added at its window's maximum.
Tensor max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Shape& input_sizes) {
  Tensor x_grad = new_empty(input_sizes, grad.dtype(), grad.device());
  {
    autograd::NoGradGuard no_grad;
    kernel(&Kernels::max_pool2d_backward, "max_pool2d backward", grad)(grad.detach().contiguous(), indices, x_grad);
  }
  return record("max_pool2d_backward", {grad}, x_grad, [indices](const Tensor& gg, const LambdaNode&) {
    return Grads{gather_at_indices(gg, indices)};
  });
}

// ---- average pooling: the backward is the forward's adjoint, and the adjoint's backward the forward ----

// Either an avg_pool2d (geometry set) or an adaptive_avg_pool2d (geometry unset).
struct AveragePool {
  std::optional<Conv2dGeometry> geometry;
  bool count_include_pad = true;
  const char* name() const { return geometry ? "avg_pool2d" : "adaptive_avg_pool2d"; }
  const char* backward_name() const { return geometry ? "avg_pool2d_backward" : "adaptive_avg_pool2d_backward"; }
};

Tensor average_pool_backward(const Tensor& grad, const AveragePool& pool, const Shape& input_sizes);

// x [..., H, W] -> [..., out_h, out_w], checked.
Tensor average_pool_forward(const Tensor& x, const AveragePool& pool, int64_t out_h, int64_t out_w) {
  Tensor out = new_empty(with_plane(x.sizes(), out_h, out_w), x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    const Tensor in = x.detach().contiguous();
    if (pool.geometry)
      kernel(&Kernels::avg_pool2d_forward, "avg_pool2d", x)(in, *pool.geometry, pool.count_include_pad, out);
    else
      kernel(&Kernels::adaptive_avg_pool2d_forward, "adaptive_avg_pool2d", x)(in, out);
  }
  return record(pool.name(), {x}, out, [pool, sizes = x.sizes()](const Tensor& g, const LambdaNode&) {
    return Grads{average_pool_backward(g, pool, sizes)};
  });
}

// grad [..., out_h, out_w] -> [..., H, W]
Tensor average_pool_backward(const Tensor& grad, const AveragePool& pool, const Shape& input_sizes) {
  Tensor x_grad = new_empty(input_sizes, grad.dtype(), grad.device());
  {
    autograd::NoGradGuard no_grad;
    const Tensor g = grad.detach().contiguous();
    if (pool.geometry)
      kernel(&Kernels::avg_pool2d_backward, "avg_pool2d backward", grad)(g, *pool.geometry, pool.count_include_pad,
                                                                         x_grad);
    else
      kernel(&Kernels::adaptive_avg_pool2d_backward, "adaptive_avg_pool2d backward", grad)(g, x_grad);
  }
  const Shape& out = grad.sizes();
  return record(pool.backward_name(), {grad}, x_grad,
                [pool, out_h = out[out.size() - 2], out_w = out[out.size() - 1]](const Tensor& gg, const LambdaNode&) {
                  return Grads{average_pool_forward(gg, pool, out_h, out_w)};
                });
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, Size2 kernel_size, std::optional<Size2> stride,
                                                  Size2 padding, Size2 dilation, bool ceil_mode) {
  check_pool_input("max_pool2d", x);
  const auto forward = kernel(&Kernels::max_pool2d_forward, "max_pool2d", x);  // a missing kernel is the first error
  const Conv2dGeometry g = pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode);
  const Shape out_sizes = with_plane(x.sizes(), g.h_out, g.w_out);
  Tensor out = new_empty(out_sizes, x.dtype(), x.device());
  Tensor indices = new_empty(out_sizes, kInt64, x.device());
  {
    autograd::NoGradGuard no_grad;
    forward(x.detach().contiguous(), g, out, indices);
  }
  // Saved, so that a change of the returned indices in place is an error at backward time.
  out = record("max_pool2d", {x}, out, [si = SavedTensor(indices), sizes = x.sizes()](const Tensor& grad,
                                                                                      const LambdaNode&) {
    return Grads{max_pool2d_backward(grad, si.unpack("max_pool2d"), sizes)};
  });
  return {out, indices};
}

Tensor max_pool2d(const Tensor& x, Size2 kernel_size, std::optional<Size2> stride, Size2 padding, Size2 dilation,
                  bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& x, Size2 kernel_size, std::optional<Size2> stride, Size2 padding, bool ceil_mode,
                  bool count_include_pad) {
  check_pool_input("avg_pool2d", x);
  kernel(&Kernels::avg_pool2d_forward, "avg_pool2d", x);  // a missing kernel is the first error
  AveragePool pool;
  pool.geometry = pool_geometry("avg_pool2d", x, kernel_size, stride, padding, {1, 1}, ceil_mode);
  pool.count_include_pad = count_include_pad;
  return average_pool_forward(x, pool, pool.geometry->h_out, pool.geometry->w_out);
}

Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size) {
  check_pool_input("adaptive_avg_pool2d", x);
  kernel(&Kernels::adaptive_avg_pool2d_forward, "adaptive_avg_pool2d", x);
  CTXPOOL_CHECK(output_size[0] > 0 && output_size[1] > 0, "adaptive_avg_pool2d: output size must be positive, got ",
                shape_of(output_size), " (input ", x.sizes(), ")");
  return average_pool_forward(x, AveragePool{}, output_size[0], output_size[1]);
}

}  // namespace ctxpool::ops
