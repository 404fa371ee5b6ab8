// conv2d as im2col + one grouped matmul. im2col2d and its adjoint col2im2d are the only ops with
// kernels of their own (Kernels::im2col2d, col2im2d), and each one's backward is the other; the rest
// is matmul, reshape, permute and add. So conv2d's gradients and double backward come from the
// composition, and it runs on any device that has the two kernels.
//
//   cols = im2col (kernel layout)               [C_in * kh * kw, B, L],  L = H_out * W_out
//        -> view [G, C_in/G * kh * kw, B * L]   (group g's channels are one block of rows)
//   out  = weight.view([G, C_out/G, C_in/G * kh * kw]) @ cols          [G, C_out/G, B * L]
//        -> view [C_out, B, H_out, W_out] -> permute [B, C_out, H_out, W_out]  (+ bias [C_out, 1, 1])
//
// With the batch inside the columns, each group is one large GEMM (and so are both of its gradients:
// no per-image products, no sum over B). The row order (c * kh + i) * kw + j of cols is the column
// order of the weight [C_out, C_in/G, kh, kw] flattened. The public im2col2d / col2im2d show cols as
// [B, C * kh * kw, L] (a permuted view), as torch.nn.functional.unfold / fold do.
//
// Where the device's table has whole-convolution kernels (Kernels::conv2d_forward / conv2d_backward:
// the CPU's chunked im2col + GEMM, cuDNN on CUDA), conv2d calls them instead, with the same formulas
// written with ops above for the create_graph backward (conv2d_grads_composite). conv2d_im2col always
// runs the composition.
#include <string>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

using Size2 = std::array<int64_t, 2>;

Shape shape_of(Size2 s) { return {s[0], s[1]}; }

// The window's geometry over an h x w image, or an error naming `op` and `what` ("input [B, C, H, W]")
// when a size is out of range or no output position fits.
Conv2dGeometry window_geometry(const char* op, const std::string& what, int64_t h, int64_t w, Size2 kernel,
                               Size2 stride, Size2 padding, Size2 dilation) {
  CTXPOOL_CHECK(kernel[0] > 0 && kernel[1] > 0, op, ": kernel size must be positive, got ", shape_of(kernel),
                " (", what, ")");
  CTXPOOL_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive, got ", shape_of(stride),
                " (", what, ")");
  CTXPOOL_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation must be positive, got ",
                shape_of(dilation), " (", what, ")");
  CTXPOOL_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be non-negative, got ",
                shape_of(padding), " (", what, ")");
  const Shape span = {dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1};
  const Shape padded = {h + 2 * padding[0], w + 2 * padding[1]};
  CTXPOOL_CHECK(padded[0] >= span[0] && padded[1] >= span[1], op, ": ", what, " padded to ", padded,
                " is smaller than the kernel's span ", span, " (kernel ", shape_of(kernel), ", dilation ",
                shape_of(dilation), ", padding ", shape_of(padding), "), so the output would be empty");
  Conv2dGeometry g;
  g.kh = kernel[0], g.kw = kernel[1];
  g.stride_h = stride[0], g.stride_w = stride[1];
  g.pad_h = padding[0], g.pad_w = padding[1];
  g.dil_h = dilation[0], g.dil_w = dilation[1];
  g.h_out = (padded[0] - span[0]) / stride[0] + 1;
  g.w_out = (padded[1] - span[1]) / stride[1] + 1;
  return g;
}

Tensor col2im_rows(const Tensor& cols, const Conv2dGeometry& g, int64_t h, int64_t w);

// The kernels' layout, on checked inputs: x [B, C, H, W] -> cols [C * kh * kw, B, L]. The backward
// adds the gradient back with col2im_rows.
Tensor im2col_rows(const Tensor& x, const Conv2dGeometry& g) {
  const Shape& s = x.sizes();
  Tensor cols = new_empty({s[1] * g.kh * g.kw, s[0], g.h_out * g.w_out}, x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    kernel(&Kernels::im2col2d, "im2col2d", x)(x.detach().contiguous(), g, cols);
  }
  const int64_t h = s[2], w = s[3];
  return record("im2col2d", {x}, cols, [g, h, w](const Tensor& grad, const LambdaNode&) {
    return Grads{col2im_rows(grad, g, h, w)};
  });
}

// cols [C * kh * kw, B, L] -> [B, C, h, w], on checked inputs; the backward reads the gradient's
// patches with im2col_rows.
Tensor col2im_rows(const Tensor& cols, const Conv2dGeometry& g, int64_t h, int64_t w) {
  const Shape& s = cols.sizes();
  Tensor out = new_empty({s[1], s[0] / (g.kh * g.kw), h, w}, cols.dtype(), cols.device());
  {
    autograd::NoGradGuard no_grad;
    kernel(&Kernels::col2im2d, "col2im2d", cols)(cols.detach().contiguous(), g, out);
  }
  return record("col2im2d", {cols}, out, [g](const Tensor& grad, const LambdaNode&) {
    return Grads{im2col_rows(grad, g)};
  });
}

void check_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups) {
  check_floating("conv2d", x);
  check_defined("conv2d", weight, "weight");
  check_same("conv2d", x, weight);
  CTXPOOL_CHECK(x.dim() == 4, "conv2d: expected input x [B, C_in, H, W] (4-D), got shape ", x.sizes(),
                " (unsqueeze(0) a single image)");
  CTXPOOL_CHECK(weight.dim() == 4, "conv2d: expected weight [C_out, C_in / groups, kh, kw] (4-D), got shape ",
                weight.sizes());
  CTXPOOL_CHECK(groups >= 1, "conv2d: groups must be >= 1, got ", groups);
  const int64_t c_in = x.sizes()[1], c_out = weight.sizes()[0];
  CTXPOOL_CHECK(c_out > 0, "conv2d: weight ", weight.sizes(), " must have C_out > 0");
  CTXPOOL_CHECK(c_in % groups == 0, "conv2d: input ", x.sizes(), " has C_in = ", c_in,
                " channels, which groups = ", groups, " does not divide");
  CTXPOOL_CHECK(c_out % groups == 0, "conv2d: weight ", weight.sizes(), " has C_out = ", c_out,
                " channels, which groups = ", groups, " does not divide");
  CTXPOOL_CHECK(weight.sizes()[1] * groups == c_in, "conv2d: input ", x.sizes(), " has ", c_in,
                " channels but weight ", weight.sizes(), " with groups = ", groups, " expects C_in = ",
                weight.sizes()[1] * groups, " (weight.size(1) * groups)");
  if (bias.defined()) {
    check_same("conv2d", x, bias);
    CTXPOOL_CHECK(bias.sizes() == Shape{c_out}, "conv2d: expected bias of shape [", c_out, "] (C_out of weight ",
                  weight.sizes(), "), got ", bias.sizes());
  }
}

// The gradients of conv2d (no bias) with differentiable ops, for the create_graph backward of the
// fused path: grad [B, C_out, h_out, w_out] -> {grad_x, grad_weight} (undefined where not needed).
Grads conv2d_grads_composite(const Tensor& x, const Tensor& weight, const Tensor& grad, const Conv2dGeometry& g,
                             int64_t groups, const LambdaNode& n) {
  const Shape& xs = x.sizes();
  const int64_t batch = xs[0], c_out = weight.sizes()[0], rows_per_group = xs[1] / groups * g.kh * g.kw;
  const int64_t positions = batch * g.h_out * g.w_out;
  // grad as the forward's [G, C_out / G, B * L]
  const Tensor grad_rows =
      reshape(permute(reshape(grad, {batch, c_out, g.h_out * g.w_out}), {1, 0, 2}), {groups, c_out / groups, positions});
  const Tensor grouped_weight = reshape(weight, {groups, c_out / groups, rows_per_group});
  Tensor grad_x, grad_weight;
  if (n.needs_input_grad(0)) {
    const Tensor grad_cols = matmul(transpose(grouped_weight, 1, 2), grad_rows);  // [G, rows, B * L]
    grad_x = col2im_rows(reshape(grad_cols, {xs[1] * g.kh * g.kw, batch, g.h_out * g.w_out}), g, xs[2], xs[3]);
  }
  if (n.needs_input_grad(1)) {
    const Tensor cols = reshape(im2col_rows(x, g), {groups, rows_per_group, positions});
    grad_weight = reshape(matmul(grad_rows, transpose(cols, 1, 2)), weight.sizes());
  }
  return {grad_x, grad_weight};
}

// Whether x's device has whole-convolution kernels that handle this (non-empty) convolution.
bool fused_conv2d_fits(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) {
  const Kernels& table = kernels(x.device());
  if (table.conv2d_forward == nullptr || table.conv2d_backward == nullptr || x.numel() == 0) return false;
  return table.conv2d_supports == nullptr || table.conv2d_supports(x, weight, g, groups);
}

// conv2d (no bias) through the device's convolution kernels.
Tensor fused_conv2d(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) {
  Tensor out = new_empty({x.sizes()[0], weight.sizes()[0], g.h_out, g.w_out}, x.dtype(), x.device());
  {
    autograd::NoGradGuard no_grad;
    kernel(&Kernels::conv2d_forward, "conv2d", x)(contiguous(x.detach()), contiguous(weight.detach()), g, groups,
                                                  out);
  }
  return record("conv2d", {x, weight}, out, [sx = SavedTensor(x), sw = SavedTensor(weight), g, groups](
                                                const Tensor& grad, const LambdaNode& n) {
    const Tensor x = sx.unpack("conv2d"), w = sw.unpack("conv2d");
    // create_graph; or the device's kernels no longer take this shape (cuDNN's choice depends on the
    // TF32 switch, which may have changed since the forward)
    if (autograd::GradMode::is_enabled() || !fused_conv2d_fits(x, w, g, groups))
      return conv2d_grads_composite(x, w, grad, g, groups, n);
    Tensor grad_x, grad_w;
    if (n.needs_input_grad(0)) grad_x = new_empty(x.sizes(), x.dtype(), x.device());
    if (n.needs_input_grad(1)) grad_w = new_empty(w.sizes(), w.dtype(), w.device());
    kernel(&Kernels::conv2d_backward, "conv2d backward", x)(contiguous(x), contiguous(w), contiguous(grad), g, groups,
                                                            grad_x, grad_w);
    return Grads{grad_x, grad_w};
  });
}

}  // namespace

Tensor im2col2d(const Tensor& x, Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation) {
  check_floating("im2col2d", x);
  kernel(&Kernels::im2col2d, "im2col2d", x);
  CTXPOOL_CHECK(x.dim() == 4, "im2col2d: expected input x [B, C, H, W] (4-D), got shape ", x.sizes());
  const Conv2dGeometry g = window_geometry("im2col2d", detail::str_cat("input ", x.sizes()), x.sizes()[2],
                                           x.sizes()[3], kernel_size, stride, padding, dilation);
  return permute(im2col_rows(x, g), {1, 0, 2});  // [B, C * kh * kw, L], a view
}

Tensor col2im2d(const Tensor& cols, Size2 output_size, Size2 kernel_size, Size2 stride, Size2 padding,
                Size2 dilation) {
  check_floating("col2im2d", cols);
  kernel(&Kernels::col2im2d, "col2im2d", cols);
  CTXPOOL_CHECK(cols.dim() == 3, "col2im2d: expected cols [B, C * kh * kw, L] (3-D), got shape ", cols.sizes());
  CTXPOOL_CHECK(output_size[0] >= 0 && output_size[1] >= 0, "col2im2d: output_size must be non-negative, got ",
                shape_of(output_size));
  const Conv2dGeometry g = window_geometry("col2im2d", detail::str_cat("output_size ", shape_of(output_size)),
                                           output_size[0], output_size[1], kernel_size, stride, padding, dilation);
  const int64_t taps = g.kh * g.kw;
  CTXPOOL_CHECK(cols.sizes()[1] % taps == 0, "col2im2d: cols ", cols.sizes(), " has ", cols.sizes()[1],
                " rows, not a multiple of kh * kw = ", taps, " (kernel ", shape_of(kernel_size), ")");
  CTXPOOL_CHECK(cols.sizes()[2] == g.h_out * g.w_out, "col2im2d: cols ", cols.sizes(), " has ", cols.sizes()[2],
                " columns but output_size ", shape_of(output_size), " gives ", g.h_out, " x ", g.w_out, " = ",
                g.h_out * g.w_out, " window positions");
  return col2im_rows(permute(cols, {1, 0, 2}), g, output_size[0], output_size[1]);
}

namespace {

// The checks, the window's geometry and the first error for a device without im2col2d, shared by
// conv2d and conv2d_im2col.
Conv2dGeometry checked_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                                Size2 padding, Size2 dilation, int64_t groups) {
  check_conv2d(x, weight, bias, groups);
  const Shape& xs = x.sizes();
  const Size2 kernel_size = {weight.sizes()[2], weight.sizes()[3]};
  const Conv2dGeometry g =
      window_geometry("conv2d", detail::str_cat("input ", xs), xs[2], xs[3], kernel_size, stride, padding, dilation);
  kernel(&Kernels::im2col2d, "conv2d", x);  // a missing kernel is the first error, before any work
  return g;
}

Tensor conv2d_composite(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dGeometry& g,
                        int64_t groups) {
  const Shape& xs = x.sizes();
  const int64_t batch = xs[0], c_in = xs[1], c_out = weight.sizes()[0];
  const int64_t rows_per_group = c_in / groups * g.kh * g.kw;
  // One GEMM per group over all B * L output positions (B small GEMMs are several times slower).
  const Tensor cols = reshape(im2col_rows(x, g), {groups, rows_per_group, batch * g.h_out * g.w_out});
  const Tensor grouped_weight = reshape(weight, {groups, c_out / groups, rows_per_group});
  const Tensor out_rows = matmul(grouped_weight, cols);  // [G, C_out / G, B * L]
  // To [B, C_out, L]: the bias add writes that layout anyway (without a bias, one copy does). 3-D, not
  // 4-D: the strided loops run along whole L-long rows instead of W_out-long ones (3x faster).
  const Tensor out = permute(reshape(out_rows, {c_out, batch, g.h_out * g.w_out}), {1, 0, 2});
  const Tensor ready = bias.defined() ? add(out, reshape(bias, {c_out, 1})) : contiguous(out);
  return reshape(ready, {batch, c_out, g.h_out, g.w_out});
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
              Size2 dilation, int64_t groups) {
  const Conv2dGeometry g = checked_geometry(x, weight, bias, stride, padding, dilation, groups);
  if (!fused_conv2d_fits(x, weight, g, groups)) return conv2d_composite(x, weight, bias, g, groups);
  const Tensor out = fused_conv2d(x, weight, g, groups);
  return bias.defined() ? add(out, reshape(bias, {weight.sizes()[0], 1, 1})) : out;
}

Tensor conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                     Size2 dilation, int64_t groups) {
  const Conv2dGeometry g = checked_geometry(x, weight, bias, stride, padding, dilation, groups);
  return conv2d_composite(x, weight, bias, g, groups);
}

}  // namespace ctxpool::ops
