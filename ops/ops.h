// The public tensor API. Every op checks its inputs (an error names the op, the shapes, dtypes and
// devices, and what was expected), allocates its output on the inputs' device, runs the device
// kernel and, when grad mode is on and an input requires grad, records its backward.
//
// Binary ops broadcast NumPy-style; their inputs must share a dtype (no silent promotion) and a device.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace ctxpool::ops {

// ---- elementwise (ops/elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(const Tensor& base, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient almost everywhere)
// GELU: approximate = "none" (exact, with erf) or "tanh" (the GPT-2 approximation).
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor clamp(const Tensor& x, double min, double max);
// A scalar as a 0-d tensor with x's dtype and device (for x + 2.0 and friends).
Tensor scalar_like(double value, const Tensor& x);

// Comparisons return bool tensors and have no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
// cond ? a : b, elementwise with broadcasting; cond is bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` wherever mask (bool, broadcastable to x) is true.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- reductions (ops/reduce.cpp) ----
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false,
           int64_t correction = 1);
// Over all elements (an error when x is empty). NaN wins. The gradient is split evenly among the
// elements equal to the result, as PyTorch does for the full reduction.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
// Along one dim: (values, int64 indices of the first maximum/minimum); the gradient goes to that index.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums the broadcast dims away so that x gets `sizes` (the backward of broadcasting).
Tensor sum_to_size(const Tensor& x, const Shape& sizes);

// ---- linear algebra (ops/linalg.cpp) ----
// 1-D..N-D as torch.matmul: vectors are promoted and squeezed back, batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- shapes and views (ops/shape.cpp). Views share storage with their input. ----
Tensor view(const Tensor& x, const Shape& sizes);     // one size may be -1; needs compatible strides
Tensor reshape(const Tensor& x, const Shape& sizes);  // a view when possible, else a copy
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& sizes);  // -1 keeps a size
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);  // all size-1 dims
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Pieces of `split_size` along dim (the last may be smaller); views of x.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
Tensor to_dtype(const Tensor& x, DType dtype);
Tensor to_device(const Tensor& x, Device device);

// ---- indexing (ops/index.cpp) ----
// weight [V, D], indices int64 [...] -> [..., D]. Backward scatter-adds into the used rows.
Tensor embedding(const Tensor& weight, const Tensor& indices);
// out[i][j] = x[i][index[i][j]] for dim 1 (and likewise for any dim), as torch.gather.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// x with src added at the positions index names along dim (out-of-place), as torch.scatter_add.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
// A float tensor [..., num_classes] with 1 at each index.
Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype = kFloat32);

// ---- neural-network functions (ops/functional.cpp) ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Normalises over the last normalized_shape.size() dims; weight and bias (optional) have that shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity unless training.
Tensor dropout(const Tensor& x, double p, bool training = true);
// U[0, 1) numbers from the default generator, drawn on options.device() itself (no host copy): the
// same numbers as rand(sizes, options) on every device. float32 or float64.
Tensor uniform(const Shape& sizes, const TensorOptions& options);

// Attention ([..., T, D] queries, [..., S, D] keys, [..., S, Dv] values -> [..., T, Dv]):
// softmax(scale * q k^T) v, one fused op with its own backward. causal: query i sees keys j <= i.
// scale <= 0 means 1 / sqrt(D).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool causal = false, double scale = -1.0);

// Local (sliding-window) causal attention, O(T W D) time and O(T W) memory (never a T x T matrix):
// q, k [..., T, D], v [..., T, Dv] -> [..., T, Dv]; query i sees the `window` keys i - window < j <= i.
// scale <= 0 means 1 / sqrt(D). ops/local_attention.cpp.
Tensor local_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale = -1.0);

// ---- convolution (ops/conv.cpp) ----
// x [B, C_in, L], weight [C_out, C_in, kernel], bias [C_out] (optional) -> [B, C_out, L_out] with
// L_out = L + pad_left + pad_right - dilation * (kernel - 1); stride 1, zero padding. Padding is
// given per side, so a causal convolution is pad_left = dilation * (kernel - 1), pad_right = 0.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t pad_left = 0,
              int64_t pad_right = 0, int64_t dilation = 1);

// ---- 2-D convolution (ops/conv2d.cpp); sizes are {height, width} ----
// x [B, C_in, H, W], weight [C_out, C_in / groups, kh, kw], bias [C_out] (optional) ->
// [B, C_out, H_out, W_out] with H_out = (H + 2 padding[0] - dilation[0] (kh - 1) - 1) / stride[0] + 1
// (likewise W_out): torch.nn.functional.conv2d, zero padding. Runs the device's convolution kernels
// (CPU: chunked im2col + GEMM; CUDA: cuDNN) where it has them, else conv2d_im2col; differentiates
// twice either way.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
              std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);
// The same convolution as a composition of ops (im2col2d + one grouped matmul over the whole batch):
// what conv2d runs on devices without convolution kernels, and the reference the tests compare to.
Tensor conv2d_im2col(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                     std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
                     std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);
// The sliding-window patches, as torch.nn.functional.unfold: x [B, C, H, W] ->
// cols [B, C * kh * kw, H_out * W_out]; row (c * kh + i) * kw + j holds tap (i, j) of channel c
// (0 where it falls on the padding). Its backward is col2im2d.
Tensor im2col2d(const Tensor& x, std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride = {1, 1},
                std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1});
// The adjoint of im2col2d, as torch.nn.functional.fold: cols [B, C * kh * kw, H_out * W_out] ->
// [B, C, H, W] with output_size = {H, W}, each entry added to the input position it was read from.
Tensor col2im2d(const Tensor& cols, std::array<int64_t, 2> output_size, std::array<int64_t, 2> kernel_size,
                std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
                std::array<int64_t, 2> dilation = {1, 1});

// ---- 2-D pooling (ops/pool.cpp), as torch.nn.functional's; sizes are {height, width} ----
// x [B, C, H, W] or [C, H, W] -> [..., H_out, W_out] with H_out = (H + 2 padding[0] - dilation[0]
// (kernel[0] - 1) - 1) / stride[0] + 1, rounded down (or up with ceil_mode, as long as the last window
// starts inside the input or its left padding); likewise W_out. stride defaults to the kernel size;
// padding is at most half the kernel size. float32 and float64.
// Max pooling: padding is -inf; the gradient goes to the first maximum of each window.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                  std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
                  bool ceil_mode = false);
// The same, and the int64 position h * W + w of each maximum in its plane (return_indices=True).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, std::array<int64_t, 2> kernel_size,
                                                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                                                  std::array<int64_t, 2> padding = {0, 0},
                                                  std::array<int64_t, 2> dilation = {1, 1}, bool ceil_mode = false);
// Average pooling (no dilation): padding counts as zeros; count_include_pad = false divides by the
// number of input positions in the window instead of its size.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel_size,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                  std::array<int64_t, 2> padding = {0, 0}, bool ceil_mode = false, bool count_include_pad = true);
// x [B, C, H, W] or [C, H, W] -> [..., out_h, out_w]: output row i averages the input rows
// floor(i H / out_h) .. ceil((i + 1) H / out_h) - 1 (columns likewise). {1, 1} is global average pooling.
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// ---- batch normalisation (ops/batch_norm.cpp), as torch.nn.functional.batch_norm ----
// x [B, C, ...] normalised per channel: y = (x - mean) / sqrt(var + eps) * weight + bias, with weight
// and bias [C] optional. training: mean and (biased) var over every dim but 1, and running_mean and
// running_var [C] (optional, both or neither) updated in place outside autograd:
// running = (1 - momentum) running + momentum batch, with the unbiased batch variance. Otherwise the
// running statistics (required) are used, as constants. Composed of ops: differentiable twice.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// ---- adaptive context pooling (ops/context_pool.cpp; ../shared/PAPER.md, docs/contextpool.md) ----
// What the pooling learns: full = weights and support sizes; weights_only = weights, support fixed
// at s_fixed; uniform = no weights (w = 1), support fixed at s_fixed.
enum class ContextPoolMode { Full, WeightsOnly, Uniform };
ContextPoolMode context_pool_mode_from_string(const std::string& name);  // "full", "weights_only", "uniform"
const char* to_string(ContextPoolMode mode);

struct ContextPool1dOptions {
  int64_t window = 16;           // K: token i pools j with |i - j| <= K (causal: i - K <= j <= i)
  bool causal = true;
  double s_min = 0.5;            // support size range, in tokens
  std::optional<double> s_max;   // default max(K / 2, s_min)
  double eps = 1e-6;             // added to the normaliser
  ContextPoolMode mode = ContextPoolMode::Full;
  std::optional<double> s_fixed; // the support size when it is not learned; default (s_min + s_max) / 2

  // A copy with s_max and s_fixed filled in; a clear error for bad values (K < 0, s_min <= 0,
  // s_max < s_min, s_fixed <= 0, non-finite or negative eps).
  ContextPool1dOptions resolved() const;
};

// x [B, N, d] features, a and b [B, N] predictor outputs -> y [B, N, d] (no residual):
//   w_j = sigmoid(a_j) (1 in uniform mode), s_i = s_min + (s_max - s_min) sigmoid(b_i) (s_fixed unless full),
//   g_i(j) = exp(-(i - j)^2 / (2 s_i^2)),  y_i = sum_{j in W(i)} g_i(j) w_j x_j / (sum_{j in W(i)} g_i(j) w_j + eps).
// Fused forward and backward (gradients to x, a, b; a zero gradient to what a mode does not learn),
// memory O(B N d + B N K): no [B, N, N] tensor. float32 and float64.
Tensor context_pool1d(const Tensor& x, const Tensor& a, const Tensor& b, const ContextPool1dOptions& options = {});
// The same computation with plain ops through a dense [B, N, N] weight matrix: the naive reference
// that tests and bench/ladder compare the fused op with (and that differentiates twice).
Tensor context_pool1d_reference(const Tensor& x, const Tensor& a, const Tensor& b,
                                const ContextPool1dOptions& options = {});
// The support sizes s [B, N] the op uses for predictor output b (differentiable; s_fixed unless full).
Tensor context_pool1d_support(const Tensor& b, const ContextPool1dOptions& options = {});

// ---- 2-D adaptive context pooling (ops/context_pool2d.cpp): images and token grids ----
struct ContextPool2dOptions {
  int64_t window = 2;            // K: output position q pools the (2K+1) x (2K+1) neighbourhood of its centre
  int64_t stride = 1;            // centres at (stride oy, stride ox): > 1 downsamples like a pooling layer
  double s_min = 0.5;            // support size range, in pixels (tokens of the grid)
  std::optional<double> s_max;   // default max(K / 2, s_min)
  double eps = 1e-6;
  ContextPoolMode mode = ContextPoolMode::Full;
  std::optional<double> s_fixed; // default (s_min + s_max) / 2

  ContextPool2dOptions resolved() const;  // as ContextPool1dOptions::resolved(), and stride >= 1
};

// x [B, H, W, d] (channels last, as a ViT's token grid), a [B, H, W] (a weight per input position),
// b [B, Ho, Wo] (a support size per output position), Ho = (H - 1) / stride + 1 (likewise Wo)
//   -> y [B, Ho, Wo, d]:  y_q = sum_{j in W(q)} g_q(j) w_j x_j / (sum_{j in W(q)} g_q(j) w_j + eps),
// with centre c_q = stride q, g_q(j) = exp(-|c_q - j|^2 / (2 s_q^2)), W(q) the (2K+1)^2 window around
// c_q clipped at the borders, and w, s as in context_pool1d. Fused forward and backward, memory
// O(B H W d + B Ho Wo K^2): no [HW, HW] tensor. Not causal. float32 and float64.
Tensor context_pool2d(const Tensor& x, const Tensor& a, const Tensor& b, const ContextPool2dOptions& options = {});
// The same with plain ops through a dense [B, Ho Wo, H W] weight matrix (the naive reference).
Tensor context_pool2d_reference(const Tensor& x, const Tensor& a, const Tensor& b,
                                const ContextPool2dOptions& options = {});

enum class Reduction { None, Mean, Sum };
// logits [N, C], target int64 [N]. Fused log_softmax + negative log likelihood. Targets equal to
// ignore_index contribute nothing (and are left out of the mean).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);

// ---- optimizer updates (ops/optim.cpp): in place, outside autograd, one fused kernel per parameter ----
// p, grad, and the state tensors: one shape, one floating dtype, one device; p and the state contiguous.
struct AdamWUpdate {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // this update's number (from 1), for the bias corrections
};
// AdamW (Loshchilov & Hutter): p *= 1 - lr wd; m, v <- moving averages of grad and grad^2;
// p -= lr / (1 - beta1^step) * m / (sqrt(v / (1 - beta2^step)) + eps).
void adamw_update_(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWUpdate& u);
struct SGDUpdate {
  double lr = 1e-2, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  bool first = false;  // the momentum buffer starts as the first gradient
};
// SGD: g = grad + wd p; with momentum buf = momentum buf + g (buf = g the first time) and g = buf (or
// g + momentum buf with nesterov); p -= lr g. buf is undefined when momentum is 0.
void sgd_update_(const Tensor& p, const Tensor& grad, const Tensor& buf, const SGDUpdate& u);

// ---- in-place (ops/tensor_methods.cpp, with Tensor::fill_, copy_, add_, mul_) ----
void fill_(const Tensor& x, double value);
void copy_(const Tensor& dst, const Tensor& src);

bool cuda_is_available();
int cuda_device_count();

}  // namespace ctxpool::ops
