// The per-device kernel table. An op in ops/<family>.cpp checks its inputs, allocates its output on
// the inputs' device and calls the kernel for that device through this table:
//
//   kernel(&Kernels::matmul, "matmul", a)(a, b, out);
//
// An op never branches on the device itself. Each backend fills its own table: ops/cpu/<family>.cpp
// and ops/cuda/<family>.cu end with add_<family>_kernels(Kernels&), and kernels(device) builds each
// table once, by explicit calls (ops/kernels.cpp; the library is static, so nothing relies on static
// initialisers being linked). An entry a backend leaves null is the clear error
// "matmul: not implemented on cuda:0 yet". The compiler checks every backend's kernel against the
// entry's type, so each signature is written once, here.
//
// A kernel receives tensors that the op has already checked, and preallocated outputs, all on its
// device. It does no allocation, no autograd and no user-facing checks, and dispatches on the dtype
// itself (CTXPOOL_DISPATCH_FLOAT / CTXPOOL_DISPATCH_ALL from core/dtype.h). "Optional" tensors may be
// undefined (Tensor()), and then are neither read nor written.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/device.h"
#include "core/profile.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace ctxpool {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Abs, Sign,
  GeluErf, GeluTanh, GeluErfGrad, GeluTanhGrad,  // *Grad: the derivative d gelu / dx
  LogicalNot
};
enum class BinaryOp {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  GeluErfBackward, GeluTanhBackward,  // a * gelu'(b): gelu's backward in one pass (floating dtypes only)
  ReluBackward,  // b <= 0 ? 0 : a (NaN b passes a): relu's backward in one pass (floating dtypes only)
  Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd  // these write bool
};

// The largest head dims (D and Dv) the fused attention kernels take; larger heads use the unfused path.
constexpr int64_t kFlashMaxHeadDim = 128;

// Where a 2-D sliding window reads (conv2d, im2col2d, col2im2d): tap (i, j) of a kh x kw kernel at
// output (oh, ow) reads input (oh * stride_h - pad_h + i * dil_h, ow * stride_w - pad_w + j * dil_w),
// zero outside the input; h_out x w_out outputs. Filled and checked by the ops (ops/conv2d.cpp;
// ops/pool.cpp for the pooling windows, where outside the input is padding instead).
struct Conv2dGeometry {
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t h_out = 0, w_out = 0;
};

struct Kernels {
  // ---- elementwise (ops/cpu/elementwise.cpp, ops/cuda/elementwise.cu) ----
  // x -> out (same shape; out may have any strides).
  void (*unary)(UnaryOp op, const Tensor& x, const Tensor& out) = nullptr;
  // a, b broadcast to out.sizes() -> out.
  void (*binary)(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = nullptr;
  // cond (bool), a, b broadcast to out.sizes() -> out.
  void (*where)(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) = nullptr;
  // x -> out (same shape): x limited to [lo, hi].
  void (*clamp)(const Tensor& x, double lo, double hi, const Tensor& out) = nullptr;
  // src broadcast to dst.sizes(), converting dtype -> dst (any strides). Both on the same device.
  void (*copy)(const Tensor& src, const Tensor& dst) = nullptr;
  // dst (any strides) = value.
  void (*fill)(const Tensor& dst, double value) = nullptr;
  // out contiguous float/double [n] <- U[0, 1): element i is word i % 4 of Philox block first + i / 4
  // under `key` (core/philox.h), the numbers Generator::uniform gives on the host.
  void (*uniform)(const Tensor& out, uint64_t first, uint64_t key) = nullptr;

  // ---- reductions (ops/cpu/reduce.cpp, ops/cuda/reduce.cu) ----
  // x contiguous [rows, cols] -> out [rows]: the sum of each row (float accumulated in double).
  void (*sum_rows)(const Tensor& x, const Tensor& out) = nullptr;
  // x contiguous [outer, reduce, inner] -> out [outer, inner]: sums over the middle dim without moving
  // data (the backward of a broadcast bias, sums over the batch).
  void (*sum_middle)(const Tensor& x, int64_t outer, int64_t reduce, int64_t inner, const Tensor& out) = nullptr;
  // x contiguous [rows, cols] -> values [rows], indices int64 [rows] of the first maximum of each row
  // (find_max) or of its first minimum (!find_max).
  void (*max_or_min_rows)(const Tensor& x, const Tensor& values, const Tensor& indices, bool find_max) = nullptr;

  // ---- linear algebra (ops/cpu/matmul.cpp, ops/cuda/matmul.cu: cuBLAS) ----
  // a [..., M, K], b [..., K, N] -> out contiguous [..., M, N]: out[b] = a[b] @ b[b] for every batch
  // index (batch dims already broadcast in the strides; the last two dims of a and b pass
  // matmul_operand_ok).
  void (*matmul)(const Tensor& a, const Tensor& b, const Tensor& out) = nullptr;

  // ---- neural-network rows: softmax, layer_norm, attention, cross_entropy (ops/cpu/nn_kernels.cpp, ops/cuda/nn_kernels.cu) ----
  // x contiguous [rows, cols] -> out [rows, cols]: softmax (or log_softmax) of each row.
  void (*softmax_rows)(const Tensor& x, const Tensor& out, bool log) = nullptr;
  // x contiguous [rows, cols] -> y [rows, cols], mean [rows], rstd [rows]; weight/bias [cols] optional.
  void (*layer_norm_rows)(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                          const Tensor& mean, const Tensor& rstd) = nullptr;
  // The layer_norm backward in one pass: x, g contiguous [rows, cols], mean/rstd [rows], weight [cols]
  // (optional) -> dx [rows, cols] (optional), dweight/dbias [cols] (optional). Column sums are formed
  // over fixed blocks of rows and added in block order: deterministic for any thread count.
  void (*layer_norm_backward_rows)(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& g, const Tensor& dx, const Tensor& dweight,
                                   const Tensor& dbias) = nullptr;
  // Attention probabilities in place: scores [rows = batch * T, S] -> softmax(scale * scores) per row;
  // with causal, row i of each query block (i = row % T) sees keys j <= i only (others become 0).
  void (*attention_softmax_rows)(const Tensor& scores, int64_t t, double scale, bool causal) = nullptr;
  // p, dp [rows, S] -> dp := scale * p * (dp - sum(p * dp)) per row (the softmax backward, in place).
  void (*softmax_backward_rows)(const Tensor& p, const Tensor& dp, double scale) = nullptr;
  // logits contiguous [N, C], target [N] -> loss [N] (0 where target == ignore_index).
  void (*cross_entropy_rows)(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                             const Tensor& loss) = nullptr;
  // The cross_entropy backward: logits [N, C], target [N], row_scale [N] (0 for ignored rows) ->
  // dlogits [N, C] = (softmax(logits) - one_hot(target)) * row_scale.
  void (*cross_entropy_backward_rows)(const Tensor& logits, const Tensor& target, const Tensor& row_scale,
                                      const Tensor& dlogits) = nullptr;

  // ---- batch normalisation's per-channel passes (ops/cpu/batch_norm.cpp, ops/cuda/batch_norm.cu), on x
  // viewed as contiguous [B, C, S]; every channel's sums are formed in one fixed order ----
  // x -> mean [C] and the biased var [C] over B and S (two passes: no cancellation).
  void (*batch_norm_stats)(const Tensor& x, const Tensor& mean, const Tensor& var) = nullptr;
  // x, g [B, C, S], mean [C] -> sum_g [C] = sum of g, sum_gc [C] = sum of g * (x - mean).
  void (*batch_norm_grad_sums)(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& sum_g,
                               const Tensor& sum_gc) = nullptr;
  // out [B, C, S] = scale[c] * (x - shift[c]) + add[c] + u_scale[c] * u; u (and then u_scale) optional.
  // (x - shift first: no cancellation when a channel's mean is large against its spread.)
  void (*channel_affine)(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& add,
                         const Tensor& u, const Tensor& u_scale, const Tensor& out) = nullptr;

  // ---- fused attention (ops/cuda/flash_attention.cu; the CPU leaves these null and runs the unfused
  // path above, which scaled_dot_product_attention falls back to wherever they are null) ----
  // q [BH, T, D], k [BH, S, D], v [BH, S, Dv] contiguous, T and S >= 1, D and Dv <= kFlashMaxHeadDim ->
  // out [BH, T, Dv] and lse [BH, T], the log-sum-exp of each row of scale * q k^T (masked). Never
  // forms a [T, S] matrix.
  void (*flash_attention_forward)(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                  const Tensor& out, const Tensor& lse) = nullptr;
  // Its backward from out, lse and g = dL/dout [BH, T, Dv]: dq, dk, dv (all written); delta [BH, T]
  // is scratch (rowsum(g * out)).
  void (*flash_attention_backward)(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                   const Tensor& lse, const Tensor& g, double scale, bool causal, const Tensor& delta,
                                   const Tensor& dq, const Tensor& dk, const Tensor& dv) = nullptr;

  // ---- whole convolutions (ops/cpu/conv2d.cpp: chunked im2col + GEMM; ops/cuda/cudnn_conv2d.cpp:
  // cuDNN). Null in CUDA builds without cuDNN, where conv2d runs as the composition im2col2d + matmul ----
  // x [B, C_in, H, W] (B >= 1), weight [C_out, C_in / groups, kh, kw] contiguous -> out
  // [B, C_out, h_out, w_out] (no bias).
  void (*conv2d_forward)(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups,
                         const Tensor& out) = nullptr;
  // grad [B, C_out, h_out, w_out] contiguous -> grad_x [B, C_in, H, W] and grad_weight (each optional).
  void (*conv2d_backward)(const Tensor& x, const Tensor& weight, const Tensor& grad, const Conv2dGeometry& g,
                          int64_t groups, const Tensor& grad_x, const Tensor& grad_weight) = nullptr;
  // Whether the two kernels above handle this convolution (cuDNN has no deterministic algorithm for
  // some shapes); null: every convolution. Where false, conv2d runs as im2col2d + matmul.
  bool (*conv2d_supports)(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) = nullptr;

  // ---- local causal attention (ops/cpu/local_attention.cpp, ops/cuda/local_attention.cu) ----
  // q, k [BH, T, D], v [BH, T, Dv] contiguous -> probs [BH, T, W] (slot c holds key j = i - W + 1 + c;
  // slots before the sequence start are 0), out [BH, T, Dv].
  void (*local_attention_forward)(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale,
                                  const Tensor& probs, const Tensor& out) = nullptr;
  // g [BH, T, Dv] contiguous, probs from the forward -> dq, dk [BH, T, D], dv [BH, T, Dv] (each optional).
  void (*local_attention_backward)(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                                   const Tensor& g, int64_t window, double scale, const Tensor& dq,
                                   const Tensor& dk, const Tensor& dv) = nullptr;

  // ---- adaptive context pooling (ops/cpu/context_pool.cpp, ops/cuda/context_pool.cu), options resolved ----
  // x [B, N, d], a, b [B, N] contiguous -> y [B, N, d], coef [B, N, S] (S = context_pool1d_slots;
  // P_i(j) = g_i(j) w_j / Z_i; slot c holds j = i - reach + c; 0 outside the sequence).
  void (*context_pool1d_forward)(const Tensor& x, const Tensor& a, const Tensor& b,
                                 const ops::ContextPool1dOptions& o, const Tensor& y, const Tensor& coef) = nullptr;
  // gy [B, N, d] contiguous, coef from the forward -> gx [B, N, d], ga, gb [B, N] (each optional).
  void (*context_pool1d_backward)(const Tensor& x, const Tensor& a, const Tensor& b,
                                  const ops::ContextPool1dOptions& o, const Tensor& coef, const Tensor& gy,
                                  const Tensor& gx, const Tensor& ga, const Tensor& gb) = nullptr;

  // ---- 2-D adaptive context pooling (ops/cpu/context_pool2d.cpp, ops/cuda/context_pool2d.cu), options resolved ----
  // x [B, H, W, d], a [B, H, W], b [B, Ho, Wo] contiguous -> y [B, Ho, Wo, d], coef [B, Ho, Wo, Sy * Sx]
  // (context_pool2d_slots; slot (sy, sx) of output q holds j = (stride qy - Ry + sy, stride qx - Rx + sx);
  // 0 outside the image).
  void (*context_pool2d_forward)(const Tensor& x, const Tensor& a, const Tensor& b,
                                 const ops::ContextPool2dOptions& o, const Tensor& y, const Tensor& coef) = nullptr;
  // gy [B, Ho, Wo, d] contiguous, coef from the forward -> gx [B, H, W, d], ga [B, H, W], gb [B, Ho, Wo]
  // (each optional).
  void (*context_pool2d_backward)(const Tensor& x, const Tensor& a, const Tensor& b,
                                  const ops::ContextPool2dOptions& o, const Tensor& coef, const Tensor& gy,
                                  const Tensor& gx, const Tensor& ga, const Tensor& gb) = nullptr;

  // ---- optimizer updates (ops/cpu/optim.cpp, ops/cuda/optim.cu) ----
  // p, grad, m, v contiguous, one shape and dtype: the AdamW update of ops::adamw_update_, in place.
  void (*adamw_update)(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v,
                       const ops::AdamWUpdate& u) = nullptr;
  // p, grad, buf (optional) contiguous: the SGD update of ops::sgd_update_, in place.
  void (*sgd_update)(const Tensor& p, const Tensor& grad, const Tensor& buf, const ops::SGDUpdate& u) = nullptr;

  // ---- indexing (ops/cpu/index.cpp, ops/cuda/index.cu) ----
  // weight [V, D] contiguous, indices [N] contiguous -> out [N, D].
  void (*embedding)(const Tensor& weight, const Tensor& indices, const Tensor& out) = nullptr;
  // grad [N, D], indices [N] -> out [V, D] (zeroed first): out[indices[i]] += grad[i], in index order.
  void (*embedding_backward)(const Tensor& grad, const Tensor& indices, const Tensor& out) = nullptr;
  // out[...i_d...] = x[...index[...]...] along dim; out has index's shape.
  void (*gather)(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) = nullptr;
  // out (a copy of x) [..index[...]..] += src[...] along dim.
  void (*scatter_add_)(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) = nullptr;

  // ---- 2-D convolution's data movement (ops/cpu/conv2d.cpp, ops/cuda/conv2d.cu; its products are matmuls) ----
  // x [B, C, H, W] contiguous -> cols [C * kh * kw, B, h_out * w_out] contiguous (batch in the middle,
  // so that conv2d's product is one GEMM over every image):
  // cols[(c * kh + i) * kw + j, b, oh * w_out + ow] = the x[b, c] value tap (i, j) of (oh, ow) reads.
  void (*im2col2d)(const Tensor& x, const Conv2dGeometry& g, const Tensor& cols) = nullptr;
  // cols [C * kh * kw, B, h_out * w_out] contiguous -> x_grad [B, C, H, W] contiguous: zeroed, then
  // each entry added where im2col2d read it (its adjoint). Each (b, c) plane is summed by one thread.
  void (*col2im2d)(const Tensor& cols, const Conv2dGeometry& g, const Tensor& x_grad) = nullptr;

  // ---- 2-D pooling (ops/cpu/pool.cpp, ops/cuda/pool.cu): windows as Conv2dGeometry's, one task per (b, c) plane ----
  // x contiguous [..., H, W] -> out, indices int64 [..., h_out, w_out]: the maximum of each window and
  // its flat position h * W + w in the plane (the first maximum, but a NaN wins; padding never does).
  void (*max_pool2d_forward)(const Tensor& x, const Conv2dGeometry& g, const Tensor& out,
                             const Tensor& indices) = nullptr;
  // grad, indices contiguous [..., h_out, w_out] -> x_grad contiguous [..., H, W]: zeroed, then each
  // grad added at its index, in output order.
  void (*max_pool2d_backward)(const Tensor& grad, const Tensor& indices, const Tensor& x_grad) = nullptr;
  // x contiguous [..., H, W] -> out [..., h_out, w_out] (dilation 1): each window's sum over the
  // positions inside the input, divided by the window's size within the padded input
  // (count_include_pad) or by the number of its positions inside the input.
  void (*avg_pool2d_forward)(const Tensor& x, const Conv2dGeometry& g, bool count_include_pad,
                             const Tensor& out) = nullptr;
  // grad contiguous [..., h_out, w_out] -> x_grad contiguous [..., H, W]: the adjoint of avg_pool2d_forward.
  void (*avg_pool2d_backward)(const Tensor& grad, const Conv2dGeometry& g, bool count_include_pad,
                              const Tensor& x_grad) = nullptr;
  // x contiguous [..., H, W] -> out [..., OH, OW]: output row i averages the input rows
  // floor(i H / OH) .. ceil((i + 1) H / OH) - 1 (columns likewise), as PyTorch's adaptive pooling.
  void (*adaptive_avg_pool2d_forward)(const Tensor& x, const Tensor& out) = nullptr;
  // grad contiguous [..., OH, OW] -> x_grad contiguous [..., H, W]: the adjoint of the forward.
  void (*adaptive_avg_pool2d_backward)(const Tensor& grad, const Tensor& x_grad) = nullptr;
};

// The table of a device type, built on first use.
const Kernels& kernels(Device device);

// "op: not implemented on cuda:0 yet (tensor of shape [...]); move it to the CPU with .cpu()".
[[noreturn]] void fail_not_implemented(const char* op, const Tensor& t);

// The entry for t's device, or the clear error above when that backend has none:
//   kernel(&Kernels::matmul, "matmul", a)(a, b, out);
// The entry comes wrapped so that CTXPOOL_PROFILE=1 can time each call under the op's name
// (core/profile.h); with profiling off the wrapper adds one branch per call.
template <typename Entry>
class KernelCall;
template <typename R, typename... Args>
class KernelCall<R (*)(Args...)> {
 public:
  KernelCall(R (*fn)(Args...), const char* op) : fn_(fn), op_(op) {}
  R operator()(Args... args) const {
    const profile::Timer timer(profile::Table::Kernels, op_);
    return fn_(std::forward<Args>(args)...);
  }
  R (*function() const)(Args...) { return fn_; }  // the table's entry itself

 private:
  R (*fn_)(Args...);
  const char* op_;
};

template <typename Entry>
KernelCall<Entry> kernel(Entry Kernels::*entry, const char* op, const Tensor& t) {
  const Entry fn = kernels(t.device()).*entry;
  if (fn == nullptr) fail_not_implemented(op, t);
  return KernelCall<Entry>(fn, op);
}

// Each backend's registration, one per family file; kernels() calls them.
namespace cpu {
void add_elementwise_kernels(Kernels& k);
void add_reduce_kernels(Kernels& k);
void add_matmul_kernels(Kernels& k);
void add_nn_kernels(Kernels& k);
void add_local_attention_kernels(Kernels& k);
void add_context_pool_kernels(Kernels& k);
void add_context_pool2d_kernels(Kernels& k);
void add_index_kernels(Kernels& k);
void add_optim_kernels(Kernels& k);
void add_conv2d_kernels(Kernels& k);
void add_pool_kernels(Kernels& k);
void add_batch_norm_kernels(Kernels& k);
}  // namespace cpu
namespace cuda {
// The whole CUDA table: ops/cuda/register.cpp calls each ops/cuda/<family>.cu's add_<family>_kernels;
// in a build without the CUDA toolkit ops/cuda/none.cpp leaves the table empty.
void add_kernels(Kernels& k);
void add_elementwise_kernels(Kernels& k);
void add_reduce_kernels(Kernels& k);
void add_matmul_kernels(Kernels& k);
void add_nn_kernels(Kernels& k);
void add_local_attention_kernels(Kernels& k);
void add_flash_attention_kernels(Kernels& k);
void add_cudnn_conv2d_kernels(Kernels& k);  // ops/cuda/cudnn_conv2d.cpp, or ops/cuda/cudnn_none.cpp
void add_context_pool_kernels(Kernels& k);
void add_context_pool2d_kernels(Kernels& k);
void add_index_kernels(Kernels& k);
void add_optim_kernels(Kernels& k);
void add_conv2d_kernels(Kernels& k);
void add_pool_kernels(Kernels& k);
void add_batch_norm_kernels(Kernels& k);
}  // namespace cuda

// ---- helpers shared by the ops and the backends (not table entries) ----

// How a strided rows x cols matrix can go to gemm without a copy: row-major (transposed = false) or
// column-major (a transposed view), with its leading dimension ld; ok = false when neither has a
// unit stride. ops/kernels.cpp.
struct GemmLayout {
  bool transposed = false;
  int64_t ld = 0;
  bool ok = false;
};
GemmLayout gemm_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);
// Whether the last two dims of t can go to gemm without a copy.
bool matmul_operand_ok(const Tensor& t);

// A context_pool1d window reaches min(K, n - 1) tokens back (and forward when bidirectional); its
// slots are the tokens it can hold.
inline int64_t context_pool1d_reach(int64_t n, const ops::ContextPool1dOptions& o) {
  return std::min<int64_t>(o.window, std::max<int64_t>(n - 1, 0));
}
inline int64_t context_pool1d_slots(int64_t n, const ops::ContextPool1dOptions& o) {
  return o.causal ? context_pool1d_reach(n, o) + 1 : 2 * context_pool1d_reach(n, o) + 1;
}
// The 2-D window reaches min(K, size - 1) pixels each way along each axis (clipped windows of a
// small image keep only the slots that can hold a pixel); Sy * Sx slots.
inline int64_t context_pool2d_reach(int64_t size, const ops::ContextPool2dOptions& o) {
  return std::min<int64_t>(o.window, std::max<int64_t>(size - 1, 0));
}
inline int64_t context_pool2d_slots(int64_t h, int64_t w, const ops::ContextPool2dOptions& o) {
  return (2 * context_pool2d_reach(h, o) + 1) * (2 * context_pool2d_reach(w, o) + 1);
}
inline int64_t context_pool2d_out_size(int64_t size, const ops::ContextPool2dOptions& o) {
  return size == 0 ? 0 : (size - 1) / o.stride + 1;
}

}  // namespace ctxpool
