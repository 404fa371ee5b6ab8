// conv1d as a composite of existing ops (im2col + one matmul), so its gradient, double backward and
// every device come from cat, narrow, stack and matmul with no kernel of its own.
//
//   x [B, C_in, L] --zero-pad--> xp [B, C_in, Lp], Lp = pad_left + L + pad_right
//   cols[b, c, k, t] = xp[b, c, t + k * dilation]            [B, C_in, kernel, L_out]
//                    -> reshape [B, C_in * kernel, L_out]    (row c * kernel + k)
//   out = weight.reshape([C_out, C_in * kernel]) @ cols      [B, C_out, L_out]  (+ bias [C_out, 1])
//
// with L_out = Lp - dilation * (kernel - 1). The row order c * kernel + k of cols is exactly the
// column order of the reshaped weight [C_out, C_in, kernel], so no permute is needed.
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

void check_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t pad_left,
                  int64_t pad_right, int64_t dilation) {
  check_floating("conv1d", x);
  check_defined("conv1d", weight, "weight");
  check_same("conv1d", x, weight);
  CTXPOOL_CHECK(x.dim() == 3, "conv1d: expected input x [B, C_in, L] (3-D), got shape ", x.sizes(),
                " (unsqueeze(0) a single sequence)");
  CTXPOOL_CHECK(weight.dim() == 3, "conv1d: expected weight [C_out, C_in, kernel] (3-D), got shape ",
                weight.sizes());
  CTXPOOL_CHECK(weight.sizes()[1] == x.sizes()[1], "conv1d: input ", x.sizes(), " has ", x.sizes()[1],
                " channels but weight ", weight.sizes(), " expects C_in = ", weight.sizes()[1]);
  CTXPOOL_CHECK(weight.sizes()[0] > 0 && weight.sizes()[2] > 0, "conv1d: weight ", weight.sizes(),
                " must have C_out > 0 and kernel > 0");
  if (bias.defined()) {
    check_same("conv1d", x, bias);
    CTXPOOL_CHECK(bias.sizes() == Shape{weight.sizes()[0]}, "conv1d: expected bias of shape [",
                  weight.sizes()[0], "] (C_out of weight ", weight.sizes(), "), got ", bias.sizes());
  }
  CTXPOOL_CHECK(pad_left >= 0 && pad_right >= 0, "conv1d: padding must be non-negative, got pad_left=",
                pad_left, " pad_right=", pad_right);
  CTXPOOL_CHECK(dilation >= 1, "conv1d: dilation must be >= 1, got ", dilation);
  const int64_t span = dilation * (weight.sizes()[2] - 1) + 1;  // input positions one output sees
  const int64_t padded = x.sizes()[2] + pad_left + pad_right;
  CTXPOOL_CHECK(padded >= span, "conv1d: input ", x.sizes(), " padded to length ", padded,
                " is shorter than the kernel's span ", span, " (kernel ", weight.sizes()[2],
                ", dilation ", dilation, "), so L_out = ", padded - span + 1, " < 1");
}

// x [B, C, L] -> [B, C, pad_left + L + pad_right], zeros on each side.
Tensor zero_pad(const Tensor& x, int64_t pad_left, int64_t pad_right) {
  if (pad_left == 0 && pad_right == 0) return x;
  const TensorOptions options = TensorOptions(x.dtype()).device(x.device());
  std::vector<Tensor> parts;
  if (pad_left > 0) parts.push_back(zeros({x.sizes()[0], x.sizes()[1], pad_left}, options));
  parts.push_back(x);
  if (pad_right > 0) parts.push_back(zeros({x.sizes()[0], x.sizes()[1], pad_right}, options));
  return cat(parts, 2);
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t pad_left,
              int64_t pad_right, int64_t dilation) {
  check_conv1d(x, weight, bias, pad_left, pad_right, dilation);
  const int64_t batch = x.sizes()[0], c_in = x.sizes()[1];
  const int64_t c_out = weight.sizes()[0], kernel = weight.sizes()[2];
  const Tensor padded = zero_pad(x, pad_left, pad_right);
  const int64_t l_out = padded.sizes()[2] - dilation * (kernel - 1);

  // One shifted view per kernel tap, stacked into the im2col tensor [B, C_in * kernel, L_out].
  std::vector<Tensor> taps;
  taps.reserve(static_cast<size_t>(kernel));
  for (int64_t k = 0; k < kernel; ++k) taps.push_back(narrow(padded, 2, k * dilation, l_out));
  const Tensor cols = reshape(stack(taps, 2), {batch, c_in * kernel, l_out});

  // [C_out, C_in * kernel] @ [B, C_in * kernel, L_out]: matmul broadcasts the weight over B.
  Tensor out = matmul(reshape(weight, {c_out, c_in * kernel}), cols);
  if (bias.defined()) out = add(out, reshape(bias, {c_out, 1}));
  return out;
}

}  // namespace ctxpool::ops
