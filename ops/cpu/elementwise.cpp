// Elementwise CPU kernels: unary math, binary arithmetic and comparisons, where, clamp, copy, fill.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/parallel.h"
#include "core/philox.h"
#include "ops/cpu/fast_math.h"
#include "ops/cpu/loops.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_elementwise_kernels at the end).
namespace {

template <typename T>
T* base(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

template <typename T>
[[gnu::always_inline]] inline T unary_value(UnaryOp op, T x) {
  constexpr T kSqrt2 = T(1.4142135623730951);
  constexpr T kInvSqrt2Pi = T(0.3989422804014327);
  constexpr T kTanhC = T(0.7978845608028654);  // sqrt(2 / pi)
  constexpr T kTanhA = T(0.044715);
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return exp_of(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Tanh: return tanh_of(x);
    case UnaryOp::Sigmoid: return T(1) / (T(1) + exp_of(-x));
    case UnaryOp::Relu: return x < T(0) ? T(0) : x;  // NaN passes through, as in PyTorch
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + erf_of(x / kSqrt2));
    case UnaryOp::GeluTanh: {
      const T u = kTanhC * (x + kTanhA * x * x * x);
      return T(0.5) * x * (T(1) + tanh_of(u));
    }
    case UnaryOp::GeluErfGrad:
      return T(0.5) * (T(1) + erf_of(x / kSqrt2)) + x * kInvSqrt2Pi * exp_of(T(-0.5) * x * x);
    case UnaryOp::GeluTanhGrad: {
      const T u = kTanhC * (x + kTanhA * x * x * x);
      const T t = tanh_of(u);
      return T(0.5) * (T(1) + t) +
             T(0.5) * x * (T(1) - t * t) * kTanhC * (T(1) + T(3) * kTanhA * x * x);
    }
    case UnaryOp::LogicalNot: break;
  }
  return x;
}

// One operation over a run; the switch is hoisted out of the per-element loop.
template <typename T, typename F>
void run_unary(const Tensor& x, const Tensor& out, const F& f) {
  T* xp = base<T>(x);
  T* op = base<T>(out);
  for_each_run<2>(out.sizes(), {out.strides(), x.strides()},
                  [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st,
                      int64_t run) {
                    T* o = op + off[0];
                    const T* a = xp + off[1];
                    if (st[0] == 1 && st[1] == 1) {
                      for (int64_t r = 0; r < run; ++r) o[r] = f(a[r]);
                    } else {
                      for (int64_t r = 0; r < run; ++r) o[r * st[0]] = f(a[r * st[1]]);
                    }
                  });
}

template <typename T, typename TOut, typename F>
void run_binary(const Tensor& a, const Tensor& b, const Tensor& out, const F& f) {
  const T* ap = base<T>(a);
  const T* bp = base<T>(b);
  TOut* op = base<TOut>(out);
  const Shape& shape = out.sizes();
  const Shape sa = broadcast_strides(a.sizes(), a.strides(), shape);
  const Shape sb = broadcast_strides(b.sizes(), b.strides(), shape);
  for_each_run<3>(shape, {out.strides(), sa, sb},
                  [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st,
                      int64_t run) {
                    TOut* o = op + off[0];
                    const T* x = ap + off[1];
                    const T* y = bp + off[2];
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                      for (int64_t r = 0; r < run; ++r) o[r] = f(x[r], y[r]);
                    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                      // One operand constant along the row (a bias per channel): vectorises too.
                      const T y0 = *y;
                      for (int64_t r = 0; r < run; ++r) o[r] = f(x[r], y0);
                    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                      const T x0 = *x;
                      for (int64_t r = 0; r < run; ++r) o[r] = f(x0, y[r]);
                    } else {
                      for (int64_t r = 0; r < run; ++r) o[r * st[0]] = f(x[r * st[1]], y[r * st[2]]);
                    }
                  });
}

// One lambda per op, so the compiler sees a constant op and can vectorise each loop.
template <typename T>
void unary_typed(UnaryOp op, const Tensor& x, const Tensor& out) {
#define CTXPOOL_UNARY_CASE(name) \
  case UnaryOp::name:            \
    return run_unary<T>(x, out, [](T v) { return unary_value(UnaryOp::name, v); });
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
  if (op == UnaryOp::LogicalNot) {
    run_unary<uint8_t>(x, out, [](uint8_t v) -> uint8_t { return !v; });
    return;
  }
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "unary", [&] { unary_typed<scalar_t>(op, x, out); });
}

// g * gelu'(x) (BinaryOp::Gelu*Backward); the op refuses integer dtypes, which get no code here.
template <typename T, UnaryOp kGrad>
void gelu_backward_contiguous(const T* g, const T* x, T* out, int64_t n) {
  parallel_for(0, n, int64_t(16384), [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) out[j] = g[j] * unary_value(kGrad, x[j]);
  });
}

template <typename T>
void gelu_backward(BinaryOp op, const Tensor& g, const Tensor& x, const Tensor& out) {
  if constexpr (std::is_floating_point_v<T>) {
    if (g.is_contiguous() && x.is_contiguous() && out.is_contiguous() && g.sizes() == out.sizes() &&
        x.sizes() == out.sizes()) {  // the common case, as one flat loop the compiler vectorises
      if (op == BinaryOp::GeluErfBackward)
        gelu_backward_contiguous<T, UnaryOp::GeluErfGrad>(base<T>(g), base<T>(x), base<T>(out), out.numel());
      else
        gelu_backward_contiguous<T, UnaryOp::GeluTanhGrad>(base<T>(g), base<T>(x), base<T>(out), out.numel());
      return;
    }
    if (op == BinaryOp::GeluErfBackward)
      run_binary<T, T>(g, x, out, [](T gi, T xi) -> T { return gi * unary_value(UnaryOp::GeluErfGrad, xi); });
    else
      run_binary<T, T>(g, x, out, [](T gi, T xi) -> T { return gi * unary_value(UnaryOp::GeluTanhGrad, xi); });
  }
}

// g where x > 0 or x is NaN, else 0 (BinaryOp::ReluBackward); a flat loop in the common contiguous case.
template <typename T>
void relu_backward(const Tensor& g, const Tensor& x, const Tensor& out) {
  const auto pass = [](T gi, T xi) -> T { return xi <= T(0) ? T(0) : gi; };
  if (g.is_contiguous() && x.is_contiguous() && out.is_contiguous() && g.sizes() == out.sizes() &&
      x.sizes() == out.sizes()) {
    const T* gp = base<T>(g);
    const T* xp = base<T>(x);
    T* op = base<T>(out);
    parallel_for(0, out.numel(), int64_t(16384), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) op[j] = pass(gp[j], xp[j]);
    });
    return;
  }
  run_binary<T, T>(g, x, out, pass);
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (op == BinaryOp::LogicalAnd) {
    run_binary<uint8_t, uint8_t>(a, b, out, [](uint8_t x, uint8_t y) -> uint8_t { return x && y; });
    return;
  }
  CTXPOOL_DISPATCH_ALL(a.dtype(), "binary", [&] {
    using T = scalar_t;
    switch (op) {
      case BinaryOp::Add: return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return x + y; });
      case BinaryOp::Sub: return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return x - y; });
      case BinaryOp::Mul: return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return x * y; });
      case BinaryOp::Div: return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return x / y; });
      case BinaryOp::Pow:
        return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return T(std::pow(x, y)); });
      case BinaryOp::Maximum:
        return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return (x != x || x > y) ? x : y; });
      case BinaryOp::Minimum:
        return run_binary<T, T>(a, b, out, [](T x, T y) -> T { return (x != x || x < y) ? x : y; });
      case BinaryOp::GeluErfBackward:
      case BinaryOp::GeluTanhBackward: return gelu_backward<T>(op, a, b, out);
      case BinaryOp::ReluBackward: return relu_backward<T>(a, b, out);
      case BinaryOp::Eq: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x == y; });
      case BinaryOp::Ne: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x != y; });
      case BinaryOp::Lt: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x < y; });
      case BinaryOp::Le: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x <= y; });
      case BinaryOp::Gt: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x > y; });
      case BinaryOp::Ge: return run_binary<T, uint8_t>(a, b, out, [](T x, T y) -> uint8_t { return x >= y; });
      case BinaryOp::LogicalAnd: break;
    }
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  const Shape& shape = out.sizes();
  const Shape sc = broadcast_strides(cond.sizes(), cond.strides(), shape);
  const Shape sa = broadcast_strides(a.sizes(), a.strides(), shape);
  const Shape sb = broadcast_strides(b.sizes(), b.strides(), shape);
  const uint8_t* cp = base<uint8_t>(cond);
  CTXPOOL_DISPATCH_ALL(out.dtype(), "where", [&] {
    using T = scalar_t;
    const T* ap = base<T>(a);
    const T* bp = base<T>(b);
    T* op = base<T>(out);
    for_each_run<4>(shape, {out.strides(), sc, sa, sb},
                    [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st,
                        int64_t run) {
                      for (int64_t r = 0; r < run; ++r)
                        op[off[0] + r * st[0]] = cp[off[1] + r * st[1]] ? ap[off[2] + r * st[2]]
                                                                        : bp[off[3] + r * st[3]];
                    });
  });
}

void clamp(const Tensor& x, double lo, double hi, const Tensor& out) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "clamp", [&] {
    const scalar_t l = static_cast<scalar_t>(lo), h = static_cast<scalar_t>(hi);
    run_unary<scalar_t>(x, out, [=](scalar_t v) { return v < l ? l : (v > h ? h : v); });
  });
}

void copy(const Tensor& src, const Tensor& dst) {
  const Shape ss = broadcast_strides(src.sizes(), src.strides(), dst.sizes());
  CTXPOOL_DISPATCH_ALL(src.dtype(), "copy", [&] {
    using S = scalar_t;
    const S* sp = base<S>(src);
    CTXPOOL_DISPATCH_ALL(dst.dtype(), "copy", [&] {
      using D = scalar_t;
      D* dp = base<D>(dst);
      for_each_run<2>(dst.sizes(), {dst.strides(), ss},
                      [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st,
                          int64_t run) {
                        D* o = dp + off[0];
                        const S* s = sp + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t r = 0; r < run; ++r) o[r] = convert_to<D>(s[r]);
                        } else if (st[0] == 1 && st[1] == 0) {  // a broadcast value (e.g. sum's gradient)
                          std::fill(o, o + run, convert_to<D>(*s));
                        } else {
                          for (int64_t r = 0; r < run; ++r) o[r * st[0]] = convert_to<D>(s[r * st[1]]);
                        }
                      });
    });
  });
}

void fill(const Tensor& dst, double value) {
  CTXPOOL_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    using T = scalar_t;
    T* dp = base<T>(dst);
    const T v = convert_to<T>(value);
    for_each_run<1>(dst.sizes(), {dst.strides()},
                    [&](const std::array<int64_t, 1>& off, const std::array<int64_t, 1>& st,
                        int64_t run) {
                      if (st[0] == 1) {
                        std::fill(dp + off[0], dp + off[0] + run, v);
                      } else {
                        for (int64_t r = 0; r < run; ++r) dp[off[0] + r * st[0]] = v;
                      }
                    });
  });
}

void uniform(const Tensor& out, uint64_t first, uint64_t key) {
  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "uniform", [&] {
    using T = scalar_t;
    T* o = base<T>(out);
    const int64_t n = out.numel(), blocks = (n + 3) / 4;
    parallel_for(0, blocks, 1024, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        philox_uniform_block(first, key, b, o + 4 * b, static_cast<int>(std::min<int64_t>(4, n - 4 * b)));
    });
  });
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

}  // namespace ctxpool::cpu
