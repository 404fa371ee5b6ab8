// conv2d forward and backward through cuDNN's convolution calls (cuda/cudnn.h says why this API).
//
// Each call describes its tensors (NCHW, contiguous), the filter and the convolution (cross-
// correlation, as PyTorch and the CPU path compute, with the groups), asks cuDNN's heuristics for
// its ranked algorithms, takes the first that is deterministic (the same bits on every run, as every
// other ctxpool kernel), and runs it with a workspace from the caching allocator. float32 uses FMA
// math only (no TF32, so results match the CPU to float32 tolerance) unless cuda::set_allow_tf32(true).
//
// NOT YET RUN ON A GPU: written and compiled without one; tests/cuda/test_parity.cpp's conv2d cases
// compare it with the CPU's convolution once a GPU is present.
#include <climits>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/cublas.h"
#include "cuda/cudnn.h"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_cudnn_conv2d_kernels at the end).
namespace {

cudnnDataType_t data_type(const Tensor& t) { return t.dtype() == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT; }

int as_int(int64_t v, const char* what) {
  CTXPOOL_CHECK(v >= 0 && v <= INT_MAX, "conv2d (cuDNN): ", what, " ", v, " does not fit cuDNN's int sizes");
  return static_cast<int>(v);
}

// The descriptors of one convolution y = conv(x, w), destroyed with it.
class ConvDescriptors {
 public:
  ConvDescriptors(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g, int64_t groups)
      : api_(cudnn()) {
    try {
      describe(x, w, y, g, groups);
    } catch (...) {  // the destructor does not run for a half-built object: free what was created
      destroy();
      throw;
    }
  }
  ~ConvDescriptors() { destroy(); }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;

  // Float32 without TF32: only algorithms in plain FMA math may run (see choose()).
  bool fma_only() const { return fma_only_; }
  // The math type the heuristics rank under: FMA only, or cuDNN's default. choose() switches it to the
  // chosen algorithm's, so each query (forward, backward data, backward filter) starts from here.
  void reset_math_type() const {
    check_cudnn(api_.set_math_type(conv_, fma_only_ ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH),
                "cudnnSetConvolutionMathType");
  }
  // "x [..] w [..] y [..] stride .. pad .. dilation .. groups ..", for error messages.
  const std::string& what() const { return what_; }

  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;

 private:
  void describe(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dGeometry& g, int64_t groups) {
    std::ostringstream os;
    os << "x " << x.sizes() << " w " << w.sizes() << " y " << y.sizes() << " " << x.dtype() << " stride "
       << g.stride_h << "x" << g.stride_w << " pad " << g.pad_h << "x" << g.pad_w << " dilation " << g.dil_h << "x"
       << g.dil_w << " groups " << groups;
    what_ = os.str();
    const cudnnDataType_t type = data_type(x);
    check_cudnn(api_.create_tensor(&x_), "cudnnCreateTensorDescriptor");
    check_cudnn(api_.create_tensor(&y_), "cudnnCreateTensorDescriptor");
    check_cudnn(api_.create_filter(&w_), "cudnnCreateFilterDescriptor");
    check_cudnn(api_.create_conv(&conv_), "cudnnCreateConvolutionDescriptor");
    const Shape& xs = x.sizes();
    const Shape& ws = w.sizes();
    const Shape& ys = y.sizes();
    check_cudnn(api_.set_tensor_4d(x_, CUDNN_TENSOR_NCHW, type, as_int(xs[0], "batch"), as_int(xs[1], "channels"),
                                   as_int(xs[2], "height"), as_int(xs[3], "width")),
                "cudnnSetTensor4dDescriptor (x)");
    check_cudnn(api_.set_tensor_4d(y_, CUDNN_TENSOR_NCHW, type, as_int(ys[0], "batch"), as_int(ys[1], "channels"),
                                   as_int(ys[2], "height"), as_int(ys[3], "width")),
                "cudnnSetTensor4dDescriptor (y)");
    check_cudnn(api_.set_filter_4d(w_, type, CUDNN_TENSOR_NCHW, as_int(ws[0], "C_out"), as_int(ws[1], "C_in / groups"),
                                   as_int(ws[2], "kh"), as_int(ws[3], "kw")),
                "cudnnSetFilter4dDescriptor");
    check_cudnn(api_.set_conv_2d(conv_, as_int(g.pad_h, "pad"), as_int(g.pad_w, "pad"), as_int(g.stride_h, "stride"),
                                 as_int(g.stride_w, "stride"), as_int(g.dil_h, "dilation"),
                                 as_int(g.dil_w, "dilation"), CUDNN_CROSS_CORRELATION, type),
                "cudnnSetConvolution2dDescriptor");
    check_cudnn(api_.set_group_count(conv_, as_int(groups, "groups")), "cudnnSetConvolutionGroupCount");
    fma_only_ = type == CUDNN_DATA_FLOAT && !allow_tf32();  // each heuristics query sets the math type
  }
  void destroy() {  // (statuses ignored: nothing can be done about a failed destroy)
    if (conv_) api_.destroy_conv(conv_);
    if (w_) api_.destroy_filter(w_);
    if (y_) api_.destroy_tensor(y_);
    if (x_) api_.destroy_tensor(x_);
    conv_ = nullptr, w_ = nullptr, y_ = nullptr, x_ = nullptr;
  }

  const CudnnApi& api_;
  bool fma_only_ = false;
  std::string what_;
};

// The first of cuDNN's ranked algorithms that succeeded, is deterministic and, for float32 without
// TF32, runs in plain FMA math (cuDNN's DEFAULT_MATH allows TF32 tensor cores on Ampere and later).
// An algorithm comes with the math type it was ranked for: the descriptor is switched to that math
// type, so that the workspace query and the call match it.
template <typename Perf>
decltype(Perf::algo) choose(const CudnnApi& api, const ConvDescriptors& d, const std::vector<Perf>& ranked,
                            int returned, const char* what) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (d.fma_only() && p.mathType != CUDNN_FMA_MATH) continue;  // DEFAULT_MATH may use TF32 on Ampere+
    if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // float32 rounded to half: never
    check_cudnn(api.set_math_type(d.conv_, p.mathType), "cudnnSetConvolutionMathType");
    return p.algo;
  }
  detail::fail("conv2d (cuDNN): none of the ", returned, " ", what, " algorithms cuDNN proposed for ", d.what(),
               " is deterministic", d.fma_only() ? " and runs in plain FMA math (no TF32)" : "",
               "; cuda::set_allow_tf32(true) widens the choice for float32");
}

// How many ranked algorithms a heuristics query may return (it can list one algorithm under several
// math types, so the enum's count may be too few).
int algorithm_count(cudnnStatus_t (*query)(cudnnHandle_t, int*), cudnnHandle_t handle, const char* what) {
  int n = 0;
  check_cudnn(query(handle, &n), what);
  return n > 0 ? n : 1;
}

// Scratch memory of `bytes` on x's device (from the caching allocator; freed when it goes out of scope).
Tensor workspace(const Tensor& like, size_t bytes) {
  if (bytes == 0) return Tensor();
  return empty({static_cast<int64_t>((bytes + 3) / 4)}, TensorOptions(kFloat32).device(like.device()));
}
void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
size_t bytes_of(const Tensor& t) { return t.defined() ? t.nbytes() : 0; }

// alpha = 1 and beta = 0 (overwrite) in the type cuDNN wants for the data type.
struct Scaling {
  explicit Scaling(const Tensor& t) : is_double(t.dtype() == kFloat64) {}
  const void* one() const { return is_double ? static_cast<const void*>(&one_d) : &one_f; }
  const void* zero() const { return is_double ? static_cast<const void*>(&zero_d) : &zero_f; }
  bool is_double;
  float one_f = 1.0f, zero_f = 0.0f;
  double one_d = 1.0, zero_d = 0.0;
};

void conv2d_forward(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups,
                    const Tensor& out) {
  set_device(x.device().index);
  const CudnnApi& api = cudnn();
  cudnnHandle_t handle = cudnn_handle(x.device().index);
  const ConvDescriptors d(x, weight, out, g, groups);
  std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(
      algorithm_count(api.forward_algorithm_count, handle, "cudnnGetConvolutionForwardAlgorithmMaxCount"));
  d.reset_math_type();
  int returned = 0;
  check_cudnn(api.forward_algorithms(handle, d.x_, d.w_, d.conv_, d.y_, static_cast<int>(ranked.size()), &returned,
                                     ranked.data()),
              "cudnnGetConvolutionForwardAlgorithm_v7");
  const cudnnConvolutionFwdAlgo_t algo = choose(api, d, ranked, returned, "forward");
  size_t bytes = 0;
  check_cudnn(api.forward_workspace(handle, d.x_, d.w_, d.conv_, d.y_, algo, &bytes),
              "cudnnGetConvolutionForwardWorkspaceSize");
  const Tensor ws = workspace(x, bytes);
  const Scaling s(x);
  check_cudnn(api.forward(handle, s.one(), d.x_, x.raw_data(), d.w_, weight.raw_data(), d.conv_, algo,
                          data_or_null(ws), bytes_of(ws), s.zero(), d.y_, out.raw_data()),
              "cudnnConvolutionForward");
}

void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Conv2dGeometry& g,
                     int64_t groups, const Tensor& grad_x, const Tensor& grad_weight) {
  set_device(x.device().index);
  const CudnnApi& api = cudnn();
  cudnnHandle_t handle = cudnn_handle(x.device().index);
  const ConvDescriptors d(x, weight, grad, g, groups);
  const Scaling s(x);
  if (grad_x.defined()) {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(algorithm_count(
        api.backward_data_algorithm_count, handle, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount"));
    d.reset_math_type();
    int returned = 0;
    check_cudnn(api.backward_data_algorithms(handle, d.w_, d.y_, d.conv_, d.x_, static_cast<int>(ranked.size()),
                                             &returned, ranked.data()),
                "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    const cudnnConvolutionBwdDataAlgo_t algo = choose(api, d, ranked, returned, "backward-data");
    size_t bytes = 0;
    check_cudnn(api.backward_data_workspace(handle, d.w_, d.y_, d.conv_, d.x_, algo, &bytes),
                "cudnnGetConvolutionBackwardDataWorkspaceSize");
    const Tensor ws = workspace(x, bytes);
    check_cudnn(api.backward_data(handle, s.one(), d.w_, weight.raw_data(), d.y_, grad.raw_data(), d.conv_, algo,
                                  data_or_null(ws), bytes_of(ws), s.zero(), d.x_, grad_x.raw_data()),
                "cudnnConvolutionBackwardData");
  }
  if (grad_weight.defined()) {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(algorithm_count(
        api.backward_filter_algorithm_count, handle, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount"));
    d.reset_math_type();
    int returned = 0;
    check_cudnn(api.backward_filter_algorithms(handle, d.x_, d.y_, d.conv_, d.w_, static_cast<int>(ranked.size()),
                                               &returned, ranked.data()),
                "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    const cudnnConvolutionBwdFilterAlgo_t algo = choose(api, d, ranked, returned, "backward-filter");
    size_t bytes = 0;
    check_cudnn(api.backward_filter_workspace(handle, d.x_, d.y_, d.conv_, d.w_, algo, &bytes),
                "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    const Tensor ws = workspace(x, bytes);
    check_cudnn(api.backward_filter(handle, s.one(), d.x_, x.raw_data(), d.y_, grad.raw_data(), d.conv_, algo,
                                    data_or_null(ws), bytes_of(ws), s.zero(), d.w_, grad_weight.raw_data()),
                "cudnnConvolutionBackwardFilter");
  }
}

}  // namespace

void add_cudnn_conv2d_kernels(Kernels& k) {
  k.conv2d_forward = conv2d_forward;
  k.conv2d_backward = conv2d_backward;
}

}  // namespace ctxpool::cuda
