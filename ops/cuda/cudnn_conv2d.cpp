// conv2d forward and backward through cuDNN's convolution calls (cuda/cudnn.h says why this API).
//
// Each convolution shape gets a plan, made once and cached: its descriptors (NCHW, contiguous; cross-
// correlation, as PyTorch and the CPU path compute, with the groups) and, for each of the three calls
// (forward, backward data, backward filter), the first of cuDNN's ranked algorithms that is
// deterministic (the same bits on every run, as every other ctxpool kernel), with its math type and
// workspace size. float32 uses FMA math only (no TF32, so results match the CPU to float32 tolerance)
// unless cuda::set_allow_tf32(true). Where cuDNN proposes no such algorithm for one of the calls
// (it has none for some dilated or grouped shapes), conv2d_supports says so and the op runs as
// im2col2d + matmul instead (ops/conv2d.cpp), so a convolution never fails for want of an algorithm.
//
// NOT YET RUN ON A GPU: written and compiled without one; tests/cuda/test_parity.cpp's conv2d cases
// compare it with the CPU's convolution once a GPU is present.
#include <climits>
#include <cstdio>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/check.h"
#include "cuda/cublas.h"
#include "cuda/cudnn.h"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_cudnn_conv2d_kernels at the end).
namespace {

int as_int(int64_t v, const char* what) {
  CTXPOOL_CHECK(v >= 0 && v <= INT_MAX, "conv2d (cuDNN): ", what, " ", v, " does not fit cuDNN's int sizes");
  return static_cast<int>(v);
}

// "x [..] w [..] y [..] float32 stride .. pad .. dilation .. groups ..": a convolution in error
// messages, and (with the device and math type) its plan's key in the cache.
std::string describe_conv(const Shape& x, const Shape& w, const Shape& y, DType dtype, const Conv2dGeometry& g,
                          int64_t groups) {
  std::ostringstream os;
  os << "x " << x << " w " << w << " y " << y << " " << dtype << " stride " << g.stride_h << "x" << g.stride_w
     << " pad " << g.pad_h << "x" << g.pad_w << " dilation " << g.dil_h << "x" << g.dil_w << " groups " << groups;
  return os.str();
}

// The descriptors of one convolution y = conv(x, w), destroyed with it.
class ConvDescriptors {
 public:
  ConvDescriptors(const Shape& x, const Shape& w, const Shape& y, DType dtype, const Conv2dGeometry& g,
                  int64_t groups)
      : api_(cudnn()) {
    try {
      describe(x, w, y, dtype, g, groups);
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
  void describe(const Shape& xs, const Shape& ws, const Shape& ys, DType dtype, const Conv2dGeometry& g,
                int64_t groups) {
    what_ = describe_conv(xs, ws, ys, dtype, g, groups);
    const cudnnDataType_t type = dtype == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    check_cudnn(api_.create_tensor(&x_), "cudnnCreateTensorDescriptor");
    check_cudnn(api_.create_tensor(&y_), "cudnnCreateTensorDescriptor");
    check_cudnn(api_.create_filter(&w_), "cudnnCreateFilterDescriptor");
    check_cudnn(api_.create_conv(&conv_), "cudnnCreateConvolutionDescriptor");
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

// One call's algorithm: cuDNN's enum value, the math type it was ranked for, its workspace size.
struct Choice {
  bool found = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

// The first of cuDNN's ranked algorithms that succeeded, is deterministic and, for float32 without
// TF32, runs in plain FMA math (cuDNN's DEFAULT_MATH allows TF32 tensor cores on Ampere and later);
// not found where none is. An algorithm comes with the math type it was ranked for: the descriptor is
// switched to that math type for the workspace query, and again before each call (ConvPlan::use).
template <typename Perf>
Choice choose(const CudnnApi& api, const ConvDescriptors& d, const std::vector<Perf>& ranked, int returned) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (d.fma_only() && p.mathType != CUDNN_FMA_MATH) continue;  // DEFAULT_MATH may use TF32 on Ampere+
    if (p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // float32 rounded to half: never
    check_cudnn(api.set_math_type(d.conv_, p.mathType), "cudnnSetConvolutionMathType");
    return Choice{true, static_cast<int>(p.algo), p.mathType, 0};
  }
  return Choice{};
}

// How many ranked algorithms a heuristics query may return: twice the enum's count, because it can
// list one algorithm under several math types.
int algorithm_count(cudnnStatus_t (*query)(cudnnHandle_t, int*), cudnnHandle_t handle, const char* what) {
  int n = 0;
  check_cudnn(query(handle, &n), what);
  return 2 * (n > 0 ? n : 1);
}

// One convolution shape's descriptors and its three calls' algorithms, made once (plan_for).
struct ConvPlan {
  ConvPlan(const Shape& x, const Shape& w, const Shape& y, DType dtype, const Conv2dGeometry& g, int64_t groups)
      : d(x, w, y, dtype, g, groups) {}
  bool complete() const { return forward.found && backward_data.found && backward_filter.found; }
  // Sets the descriptor to `c`'s math type for its call; the caller holds `lock`.
  void use(const Choice& c) const { check_cudnn(cudnn().set_math_type(d.conv_, c.math), "cudnnSetConvolutionMathType"); }

  ConvDescriptors d;
  Choice forward, backward_data, backward_filter;
  mutable std::mutex lock;  // the descriptor's math type is set per call: one call at a time
};

// Asks cuDNN's heuristics for each call's algorithm and its workspace size.
void choose_algorithms(ConvPlan& plan, cudnnHandle_t handle) {
  const CudnnApi& api = cudnn();
  const ConvDescriptors& d = plan.d;
  {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(
        algorithm_count(api.forward_algorithm_count, handle, "cudnnGetConvolutionForwardAlgorithmMaxCount"));
    d.reset_math_type();
    int returned = 0;
    check_cudnn(api.forward_algorithms(handle, d.x_, d.w_, d.conv_, d.y_, static_cast<int>(ranked.size()), &returned,
                                       ranked.data()),
                "cudnnGetConvolutionForwardAlgorithm_v7");
    plan.forward = choose(api, d, ranked, returned);
    if (plan.forward.found)
      check_cudnn(api.forward_workspace(handle, d.x_, d.w_, d.conv_, d.y_,
                                        static_cast<cudnnConvolutionFwdAlgo_t>(plan.forward.algo),
                                        &plan.forward.workspace),
                  "cudnnGetConvolutionForwardWorkspaceSize");
  }
  {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(algorithm_count(
        api.backward_data_algorithm_count, handle, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount"));
    d.reset_math_type();
    int returned = 0;
    check_cudnn(api.backward_data_algorithms(handle, d.w_, d.y_, d.conv_, d.x_, static_cast<int>(ranked.size()),
                                             &returned, ranked.data()),
                "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    plan.backward_data = choose(api, d, ranked, returned);
    if (plan.backward_data.found)
      check_cudnn(api.backward_data_workspace(handle, d.w_, d.y_, d.conv_, d.x_,
                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(plan.backward_data.algo),
                                              &plan.backward_data.workspace),
                  "cudnnGetConvolutionBackwardDataWorkspaceSize");
  }
  {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(algorithm_count(
        api.backward_filter_algorithm_count, handle, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount"));
    d.reset_math_type();
    int returned = 0;
    check_cudnn(api.backward_filter_algorithms(handle, d.x_, d.y_, d.conv_, d.w_, static_cast<int>(ranked.size()),
                                               &returned, ranked.data()),
                "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    plan.backward_filter = choose(api, d, ranked, returned);
    if (plan.backward_filter.found)
      check_cudnn(api.backward_filter_workspace(
                      handle, d.x_, d.y_, d.conv_, d.w_,
                      static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan.backward_filter.algo),
                      &plan.backward_filter.workspace),
                  "cudnnGetConvolutionBackwardFilterWorkspaceSize");
  }
}

// A shape's plan, or why there is none (cuDNN did not load, a size beyond its int range, a failed
// query): conv2d then composes the convolution instead.
struct Planned {
  std::shared_ptr<const ConvPlan> plan;
  std::string error;
};

// The plan for this shape on x's device, made on first use. The cache is keyed by everything the
// choice depends on (shapes, dtype, geometry, groups, device, TF32 allowed or not); a training loop
// meets a handful of shapes, and the cache is emptied if it ever holds kMaxPlans. (It is never
// destroyed: at exit the CUDA runtime may be gone before its descriptors.)
Planned plan_for(const Shape& x, const Shape& w, DType dtype, const Conv2dGeometry& g, int64_t groups, int device) {
  constexpr size_t kMaxPlans = 512;
  static std::mutex cache_lock;
  static auto* cache = new std::unordered_map<std::string, Planned>();
  const Shape y{x[0], w[0], g.h_out, g.w_out};
  const std::string key = describe_conv(x, w, y, dtype, g, groups) + " cuda:" + std::to_string(device) +
                          (dtype == kFloat32 && !allow_tf32() ? " fma" : " default-math");
  const std::lock_guard<std::mutex> guard(cache_lock);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  Planned planned;
  try {
    set_device(device);
    auto plan = std::make_shared<ConvPlan>(x, w, y, dtype, g, groups);
    choose_algorithms(*plan, cudnn_handle(device));
    planned.plan = std::move(plan);
  } catch (const Error& e) {
    planned.error = e.what();
  }
  if (cache->size() >= kMaxPlans) cache->clear();  // (plans in use are kept alive by their callers)
  cache->emplace(key, planned);
  return planned;
}

Planned plan_for(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) {
  return plan_for(x.sizes(), weight.sizes(), x.dtype(), g, groups, x.device().index);
}

// The plan, or the error that prevented it (conv2d asks conv2d_supports first, so only a direct
// kernel call can meet it).
const ConvPlan& usable(const Planned& p) {
  if (!p.plan) detail::fail("conv2d (cuDNN): ", p.error);
  return *p.plan;
}

// The error for a call without an algorithm (likewise reached by direct kernel calls only).
[[noreturn]] void no_algorithm(const ConvPlan& plan, const char* call) {
  detail::fail("conv2d (cuDNN): none of the ", call, " algorithms cuDNN proposed for ", plan.d.what(),
               " is deterministic", plan.d.fma_only() ? " and runs in plain FMA math (no TF32)" : "",
               "; cuda::set_allow_tf32(true) widens the choice for float32");
}

// Whether cuDNN has an algorithm for every call of this convolution (else conv2d composes it). A
// shape that could not be planned at all is composed too, and the first such error is printed once:
// the run goes on, slower, instead of failing.
bool conv2d_supports(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) {
  const Planned p = plan_for(x, weight, g, groups);
  if (!p.plan) {
    static std::once_flag warned;
    std::call_once(warned, [&] {
      std::fprintf(stderr, "ctxpool: conv2d on CUDA runs as im2col + matmul where cuDNN cannot be used: %s\n",
                   p.error.c_str());
    });
    return false;
  }
  return p.plan->complete();
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
  const Planned planned = plan_for(x, weight, g, groups);
  const ConvPlan* plan = &usable(planned);
  if (!plan->forward.found) no_algorithm(*plan, "forward");
  set_device(x.device().index);
  const CudnnApi& api = cudnn();
  const ConvDescriptors& d = plan->d;
  const Tensor ws = workspace(x, plan->forward.workspace);
  const Scaling s(x);
  const std::lock_guard<std::mutex> guard(plan->lock);
  plan->use(plan->forward);
  check_cudnn(api.forward(cudnn_handle(x.device().index), s.one(), d.x_, x.raw_data(), d.w_, weight.raw_data(),
                          d.conv_, static_cast<cudnnConvolutionFwdAlgo_t>(plan->forward.algo), data_or_null(ws),
                          bytes_of(ws), s.zero(), d.y_, out.raw_data()),
              "cudnnConvolutionForward");
}

void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Conv2dGeometry& g,
                     int64_t groups, const Tensor& grad_x, const Tensor& grad_weight) {
  const Planned planned = plan_for(x, weight, g, groups);
  const ConvPlan* plan = &usable(planned);
  set_device(x.device().index);
  const CudnnApi& api = cudnn();
  cudnnHandle_t handle = cudnn_handle(x.device().index);
  const ConvDescriptors& d = plan->d;
  const Scaling s(x);
  if (grad_x.defined()) {
    if (!plan->backward_data.found) no_algorithm(*plan, "backward-data");
    const Tensor ws = workspace(x, plan->backward_data.workspace);
    const std::lock_guard<std::mutex> guard(plan->lock);
    plan->use(plan->backward_data);
    check_cudnn(api.backward_data(handle, s.one(), d.w_, weight.raw_data(), d.y_, grad.raw_data(), d.conv_,
                                  static_cast<cudnnConvolutionBwdDataAlgo_t>(plan->backward_data.algo),
                                  data_or_null(ws), bytes_of(ws), s.zero(), d.x_, grad_x.raw_data()),
                "cudnnConvolutionBackwardData");
  }
  if (grad_weight.defined()) {
    if (!plan->backward_filter.found) no_algorithm(*plan, "backward-filter");
    const Tensor ws = workspace(x, plan->backward_filter.workspace);
    const std::lock_guard<std::mutex> guard(plan->lock);
    plan->use(plan->backward_filter);
    check_cudnn(api.backward_filter(handle, s.one(), d.x_, x.raw_data(), d.y_, grad.raw_data(), d.conv_,
                                    static_cast<cudnnConvolutionBwdFilterAlgo_t>(plan->backward_filter.algo),
                                    data_or_null(ws), bytes_of(ws), s.zero(), d.w_, grad_weight.raw_data()),
                "cudnnConvolutionBackwardFilter");
  }
}

}  // namespace

void add_cudnn_conv2d_kernels(Kernels& k) {
  k.conv2d_forward = conv2d_forward;
  k.conv2d_backward = conv2d_backward;
  k.conv2d_supports = conv2d_supports;
}

}  // namespace ctxpool::cuda
