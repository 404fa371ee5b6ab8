// Elementwise CUDA kernels: unary math, binary arithmetic and comparisons, where, clamp, copy, fill.
// Same semantics as ops/cpu/elementwise.cpp. Every operand may have any strides (views, transposes,
// stride 0 for broadcast dims): one thread per output element finds each operand's offset with
// StridedOffsets. Float math uses CUDA's accurate expf/tanhf/erff (the CPU uses fast approximations
// for float), so float results may differ from the CPU's in the last few bits.
#include <array>
#include <cstdint>
#include <type_traits>

#include "core/philox.h"
#include "core/shape.h"
#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_elementwise_kernels at the end).
namespace {

// ---- strided indexing ----

// StridedOffsets for N operands of one shape, with adjacent dims merged wherever every operand allows
// it (outer stride == inner stride * inner size) and size-1 dims dropped: a contiguous tensor becomes
// one dim, so its kernel needs no division per element, and views of more than kMaxDims dims work
// when they merge to at most kMaxDims.
template <int N>
StridedOffsets<N> merged_offsets(const char* op, const Shape& sizes, const std::array<Shape, N>& strides) {
  StridedOffsets<N> s;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool merge = s.nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = s.strides[k][s.nd - 1] == strides[k][d] * sizes[d];
    if (merge) {
      s.sizes[s.nd - 1] *= sizes[d];
      for (int k = 0; k < N; ++k) s.strides[k][s.nd - 1] = strides[k][d];
      continue;
    }
    CTXPOOL_CHECK(s.nd < kMaxDims, op, ": CUDA kernels take views of at most ", kMaxDims,
                  " dims that cannot be merged, got shape ", sizes, " with output strides ", strides[0]);
    s.sizes[s.nd] = sizes[d];
    for (int k = 0; k < N; ++k) s.strides[k][s.nd] = strides[k][d];
    ++s.nd;
  }
  s.set_fits_32();
  return s;
}

// Offsets of element i; the one-dim case (every contiguous tensor) skips the division.
template <int N>
__device__ inline void offsets_at(const StridedOffsets<N>& s, int64_t i, int64_t (&off)[N]) {
  if (s.nd == 1) {
    for (int k = 0; k < N; ++k) off[k] = i * s.strides[k][0];
  } else {
    s.at(i, off);
  }
}

// ---- math: float -> the f-suffixed CUDA function, double -> the double one (both accurate) ----

__device__ inline float exp_of(float x) { return ::expf(x); }
__device__ inline double exp_of(double x) { return ::exp(x); }
__device__ inline float log_of(float x) { return ::logf(x); }
__device__ inline double log_of(double x) { return ::log(x); }
__device__ inline float sqrt_of(float x) { return ::sqrtf(x); }
__device__ inline double sqrt_of(double x) { return ::sqrt(x); }
__device__ inline float tanh_of(float x) { return ::tanhf(x); }
__device__ inline double tanh_of(double x) { return ::tanh(x); }
__device__ inline float erf_of(float x) { return ::erff(x); }
__device__ inline double erf_of(double x) { return ::erf(x); }
__device__ inline float abs_of(float x) { return ::fabsf(x); }
__device__ inline double abs_of(double x) { return ::fabs(x); }

// std::pow(T, T) on the CPU: float for float, double otherwise (integers promote to double). For an
// integer power >= 0 the CPU's correctly rounded pow gives the exact integer; CUDA's pow is only
// within 2 ulp (8.999... would truncate to 8), so integers are multiplied out by squaring instead
// (in unsigned arithmetic, which wraps where the CPU's result would not fit either).
template <typename T>
__device__ inline T pow_of(T x, T y) {
  if constexpr (std::is_same_v<T, float>) {
    return ::powf(x, y);
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>) {
      if (y < 0) return static_cast<T>(::pow(static_cast<double>(x), static_cast<double>(y)));
    }
    uint64_t result = 1, base = static_cast<uint64_t>(x);
    for (uint64_t e = static_cast<uint64_t>(y); e != 0; e >>= 1) {
      if (e & 1) result *= base;
      base *= base;
    }
    return static_cast<T>(result);
  } else {
    return ::pow(x, y);
  }
}

// ---- the operations, one functor type per op so each kernel is compiled for a constant op ----

template <UnaryOp kOp>
struct UnaryFn {
  template <typename T>
  __device__ T operator()(T x) const {
    constexpr T kSqrt2 = T(1.4142135623730951);
    constexpr T kInvSqrt2Pi = T(0.3989422804014327);
    constexpr T kTanhC = T(0.7978845608028654);  // sqrt(2 / pi)
    constexpr T kTanhA = T(0.044715);
    if constexpr (kOp == UnaryOp::Neg) return -x;
    else if constexpr (kOp == UnaryOp::Exp) return exp_of(x);
    else if constexpr (kOp == UnaryOp::Log) return log_of(x);
    else if constexpr (kOp == UnaryOp::Sqrt) return sqrt_of(x);
    else if constexpr (kOp == UnaryOp::Rsqrt) return T(1) / sqrt_of(x);  // not rsqrt(): it is approximate
    else if constexpr (kOp == UnaryOp::Tanh) return tanh_of(x);
    else if constexpr (kOp == UnaryOp::Sigmoid) return T(1) / (T(1) + exp_of(-x));
    else if constexpr (kOp == UnaryOp::Relu) return x < T(0) ? T(0) : x;  // NaN passes through
    else if constexpr (kOp == UnaryOp::Abs) return abs_of(x);
    else if constexpr (kOp == UnaryOp::Sign) return T((x > T(0)) - (x < T(0)));
    else if constexpr (kOp == UnaryOp::GeluErf) return T(0.5) * x * (T(1) + erf_of(x / kSqrt2));
    else if constexpr (kOp == UnaryOp::GeluTanh) {
      const T u = kTanhC * (x + kTanhA * x * x * x);
      return T(0.5) * x * (T(1) + tanh_of(u));
    } else if constexpr (kOp == UnaryOp::GeluErfGrad) {
      return T(0.5) * (T(1) + erf_of(x / kSqrt2)) + x * kInvSqrt2Pi * exp_of(T(-0.5) * x * x);
    } else {
      static_assert(kOp == UnaryOp::GeluTanhGrad, "LogicalNot goes through NotFn");
      const T u = kTanhC * (x + kTanhA * x * x * x);
      const T t = tanh_of(u);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * kTanhC * (T(1) + T(3) * kTanhA * x * x);
    }
  }
};

struct NotFn {
  __device__ uint8_t operator()(uint8_t x) const { return !x; }
};

// v limited to [lo, hi]; NaN passes through (both comparisons are false), as on the CPU.
template <typename T>
struct ClampFn {
  T lo, hi;
  __device__ T operator()(T v) const { return v < lo ? lo : (v > hi ? hi : v); }
};

// The dtype conversion of copy: a plain static_cast, as on the CPU.
template <typename D>
struct ConvertFn {
  template <typename S>
  __device__ D operator()(S v) const { return convert_to<D>(v); }
};

// Arithmetic returns T; comparisons and LogicalAnd return bool as uint8_t.
template <BinaryOp kOp>
struct BinaryFn {
  template <typename T>
  __device__ auto operator()(T x, T y) const {
    if constexpr (kOp == BinaryOp::Add) return T(x + y);
    else if constexpr (kOp == BinaryOp::Sub) return T(x - y);
    else if constexpr (kOp == BinaryOp::Mul) return T(x * y);
    else if constexpr (kOp == BinaryOp::Div) return T(x / y);
    else if constexpr (kOp == BinaryOp::Pow) return pow_of(x, y);
    // NaN propagates: a NaN x wins; a NaN y wins because x > y is false.
    else if constexpr (kOp == BinaryOp::Maximum) return (x != x || x > y) ? x : y;
    else if constexpr (kOp == BinaryOp::Minimum) return (x != x || x < y) ? x : y;
    else if constexpr (kOp == BinaryOp::GeluErfBackward) {
      if constexpr (std::is_floating_point_v<T>) return T(x * UnaryFn<UnaryOp::GeluErfGrad>{}(y));
      else return T(0);  // (the op refuses integer dtypes)
    } else if constexpr (kOp == BinaryOp::GeluTanhBackward) {
      if constexpr (std::is_floating_point_v<T>) return T(x * UnaryFn<UnaryOp::GeluTanhGrad>{}(y));
      else return T(0);
    } else if constexpr (kOp == BinaryOp::ReluBackward) {
      return T(y <= T(0) ? T(0) : x);  // a NaN y passes x, as on the CPU
    } else if constexpr (kOp == BinaryOp::Eq) return uint8_t(x == y);
    else if constexpr (kOp == BinaryOp::Ne) return uint8_t(x != y);
    else if constexpr (kOp == BinaryOp::Lt) return uint8_t(x < y);
    else if constexpr (kOp == BinaryOp::Le) return uint8_t(x <= y);
    else if constexpr (kOp == BinaryOp::Gt) return uint8_t(x > y);
    else if constexpr (kOp == BinaryOp::Ge) return uint8_t(x >= y);
    else {
      static_assert(kOp == BinaryOp::LogicalAnd, "every BinaryOp is handled");
      return uint8_t(x && y);
    }
  }
};

// ---- kernels: one thread per output element (grid-stride) ----

// out = f(x): unary, clamp, copy (with conversion), LogicalNot.
template <typename In, typename Out, typename F>
__global__ void map_kernel(StridedOffsets<2> s, int64_t n, Out* out, const In* x, F f) {
  CTXPOOL_CUDA_LOOP(i, n) {
    int64_t off[2];
    offsets_at(s, i, off);
    out[off[0]] = f(x[off[1]]);
  }
}

// out = f(a, b)
template <typename T, typename Out, typename F>
__global__ void binary_kernel(StridedOffsets<3> s, int64_t n, Out* out, const T* a, const T* b, F f) {
  CTXPOOL_CUDA_LOOP(i, n) {
    int64_t off[3];
    offsets_at(s, i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

// out = cond ? a : b
template <typename T>
__global__ void where_kernel(StridedOffsets<4> s, int64_t n, T* out, const uint8_t* cond, const T* a, const T* b) {
  CTXPOOL_CUDA_LOOP(i, n) {
    int64_t off[4];
    offsets_at(s, i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

// out = value
template <typename T>
__global__ void fill_kernel(StridedOffsets<1> s, int64_t n, T* out, T value) {
  CTXPOOL_CUDA_LOOP(i, n) {
    int64_t off[1];
    offsets_at(s, i, off);
    out[off[0]] = value;
  }
}

// One thread per Philox block: four uniforms (fewer at the end).
template <typename T>
__global__ void uniform_kernel(int64_t n, T* out, uint64_t first, uint64_t key) {
  CTXPOOL_CUDA_LOOP(b, (n + 3) / 4) {
    const int64_t left = n - 4 * b;
    philox_uniform_block(first, key, b, out + 4 * b, left < 4 ? static_cast<int>(left) : 4);
  }
}

// ---- host side: strides, then one launch ----

// out = f(x), x read with x_strides (already broadcast to out's shape).
template <typename In, typename Out, typename F>
void launch_map(const char* name, const Tensor& x, const Shape& x_strides, const Tensor& out, F f) {
  const int64_t n = out.numel();
  const StridedOffsets<2> s = merged_offsets<2>(name, out.sizes(), {out.strides(), x_strides});
  map_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(s, n, data<Out>(out), data<In>(x), f);
  check_launch(name);
}

template <typename T, typename Out, typename F>
void launch_binary(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const Shape& shape = out.sizes();
  const int64_t n = out.numel();
  const StridedOffsets<3> s = merged_offsets<3>(
      "binary", shape,
      {out.strides(), broadcast_strides(a.sizes(), a.strides(), shape), broadcast_strides(b.sizes(), b.strides(), shape)});
  binary_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(s, n, data<Out>(out), data<T>(a), data<T>(b), f);
  check_launch("binary");
}

// One kernel per op (as the CPU has one lambda per op), so the switch is not in the loop.
template <typename T>
void unary_typed(UnaryOp op, const Tensor& x, const Tensor& out) {
#define CTXPOOL_UNARY_CASE(name) \
  case UnaryOp::name:            \
    return launch_map<T, T>("unary", x, x.strides(), out, UnaryFn<UnaryOp::name>{});
  switch (op) {
    CTXPOOL_UNARY_CASE(Neg) CTXPOOL_UNARY_CASE(Exp) CTXPOOL_UNARY_CASE(Log)
    CTXPOOL_UNARY_CASE(Sqrt) CTXPOOL_UNARY_CASE(Rsqrt) CTXPOOL_UNARY_CASE(Tanh)
    CTXPOOL_UNARY_CASE(Sigmoid) CTXPOOL_UNARY_CASE(Relu) CTXPOOL_UNARY_CASE(Abs)
    CTXPOOL_UNARY_CASE(Sign) CTXPOOL_UNARY_CASE(GeluErf) CTXPOOL_UNARY_CASE(GeluTanh)
    CTXPOOL_UNARY_CASE(GeluErfGrad) CTXPOOL_UNARY_CASE(GeluTanhGrad)
    case UnaryOp::LogicalNot: break;
  }
#undef CTXPOOL_UNARY_CASE
}

void unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  if (out.numel() == 0) return;
  set_device(out.device().index);
  if (op == UnaryOp::LogicalNot) {
    launch_map<uint8_t, uint8_t>("unary", x, x.strides(), out, NotFn{});
    return;
  }
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "unary", [&] { unary_typed<scalar_t>(op, x, out); });
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
#define CTXPOOL_BINARY_CASE(name, Out) \
  case BinaryOp::name:                 \
    return launch_binary<T, Out>(a, b, out, BinaryFn<BinaryOp::name>{});
  switch (op) {
    CTXPOOL_BINARY_CASE(Add, T) CTXPOOL_BINARY_CASE(Sub, T) CTXPOOL_BINARY_CASE(Mul, T)
    CTXPOOL_BINARY_CASE(Div, T) CTXPOOL_BINARY_CASE(Pow, T) CTXPOOL_BINARY_CASE(Maximum, T)
    CTXPOOL_BINARY_CASE(Minimum, T) CTXPOOL_BINARY_CASE(GeluErfBackward, T) CTXPOOL_BINARY_CASE(GeluTanhBackward, T)
    CTXPOOL_BINARY_CASE(ReluBackward, T)
    CTXPOOL_BINARY_CASE(Eq, uint8_t) CTXPOOL_BINARY_CASE(Ne, uint8_t) CTXPOOL_BINARY_CASE(Lt, uint8_t)
    CTXPOOL_BINARY_CASE(Le, uint8_t) CTXPOOL_BINARY_CASE(Gt, uint8_t) CTXPOOL_BINARY_CASE(Ge, uint8_t)
    case BinaryOp::LogicalAnd: break;
  }
#undef CTXPOOL_BINARY_CASE
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  set_device(out.device().index);
  if (op == BinaryOp::LogicalAnd) {
    launch_binary<uint8_t, uint8_t>(a, b, out, BinaryFn<BinaryOp::LogicalAnd>{});
    return;
  }
  CTXPOOL_DISPATCH_ALL(a.dtype(), "binary", [&] { binary_typed<scalar_t>(op, a, b, out); });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const Shape& shape = out.sizes();
  const int64_t n = out.numel();
  if (n == 0) return;
  set_device(out.device().index);
  const StridedOffsets<4> s = merged_offsets<4>(
      "where", shape,
      {out.strides(), broadcast_strides(cond.sizes(), cond.strides(), shape),
       broadcast_strides(a.sizes(), a.strides(), shape), broadcast_strides(b.sizes(), b.strides(), shape)});
  CTXPOOL_DISPATCH_ALL(out.dtype(), "where", [&] {
    using T = scalar_t;
    where_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(s, n, data<T>(out), data<uint8_t>(cond),
                                                                   data<T>(a), data<T>(b));
  });
  check_launch("where");
}

void clamp(const Tensor& x, double lo, double hi, const Tensor& out) {
  if (out.numel() == 0) return;
  set_device(out.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "clamp", [&] {
    using T = scalar_t;
    launch_map<T, T>("clamp", x, x.strides(), out, ClampFn<T>{static_cast<T>(lo), static_cast<T>(hi)});
  });
}

void copy(const Tensor& src, const Tensor& dst) {
  if (dst.numel() == 0) return;
  set_device(dst.device().index);
  const Shape ss = broadcast_strides(src.sizes(), src.strides(), dst.sizes());
  CTXPOOL_DISPATCH_ALL(src.dtype(), "copy", [&] {
    using S = scalar_t;
    CTXPOOL_DISPATCH_ALL(dst.dtype(), "copy", [&] {
      using D = scalar_t;
      launch_map<S, D>("copy", src, ss, dst, ConvertFn<D>{});
    });
  });
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  set_device(dst.device().index);
  const StridedOffsets<1> s = merged_offsets<1>("fill", dst.sizes(), {dst.strides()});
  CTXPOOL_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    using T = scalar_t;
    fill_kernel<<<blocks_for(n), kThreads, 0, current_stream()>>>(s, n, data<T>(dst), convert_to<T>(value));
  });
  check_launch("fill");
}

void uniform(const Tensor& out, uint64_t first, uint64_t key) {
  const int64_t n = out.numel();
  if (n == 0) return;
  set_device(out.device().index);
  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "uniform", [&] {
    using T = scalar_t;
    uniform_kernel<<<blocks_for((n + 3) / 4), kThreads, 0, current_stream()>>>(n, data<T>(out), first, key);
  });
  check_launch("uniform");
}

}  // namespace

void add_elementwise_kernels(Kernels& k) {
  k.unary = unary;
  k.binary = binary;
  k.where = where;
  k.clamp = clamp;
  k.copy = copy;
  k.fill = fill;
  k.uniform = uniform;
}

}  // namespace ctxpool::cuda
