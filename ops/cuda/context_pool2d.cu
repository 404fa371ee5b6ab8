// 2-D adaptive context pooling on CUDA: the math, slot layout and summation orders of
// ops/cpu/context_pool2d.cpp (read it first), with ops/cuda/context_pool.cu's warp-per-row scheme.
//
// Output q = (qy, qx) has its centre at (stride qy, stride qx); slot (ky, kx) of its window is the
// pixel (stride qy - Ry + ky, stride qx - Rx + kx); coef [B, Ho, Wo, Sy Sx] holds P_q(j) (0 outside).
//   forward  one warp per output: c_q(j) = g_q(j) w_j over the slots (lanes split them), Z_q, P_q,
//            then y_q = sum_j P_q(j) x_j (lanes split the features);
//   pass A   one warp per output: m_q = sum_j P_q(j) dP_q(j), dP_q(j) = <gy_q, x_j>, then
//            ds_q = sum_j (dP_q(j) - m_q) P_q(j) |c - j|^2 / s_q^3 -> gb_q; m_q goes to a scratch
//            tensor (8 bytes per output, from the caching allocator);
//   pass B   one warp per input pixel j: gx_j = sum_q P_q(j) gy_q and
//            da_j = (1 - w_j) sum_q (dP_q(j) - m_q) P_q(j), over the outputs whose window holds j
//            in row-major order, as on the CPU.
// Every output element is written by one warp: no atomics, the same bits on every run.
#include <cstdint>

#include "core/dtype.h"
#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/warp.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_context_pool2d_kernels at the end).
namespace {

using ops::ContextPoolMode;

using namespace warp;

// The window geometry and options, by value (computed on the host as the CPU's Grid does).
struct Grid2d {
  int64_t h, w, ho, wo, stride, ry, rx, sy, sx, d;
  bool learn_w, learn_s;
  double s_min, s_range, s_fixed, eps;
};

Grid2d make_grid(int64_t h, int64_t w, int64_t d, const ops::ContextPool2dOptions& o) {
  Grid2d g;
  g.h = h;
  g.w = w;
  g.ho = context_pool2d_out_size(h, o);
  g.wo = context_pool2d_out_size(w, o);
  g.stride = o.stride;
  g.ry = context_pool2d_reach(h, o);
  g.rx = context_pool2d_reach(w, o);
  g.sy = 2 * g.ry + 1;
  g.sx = 2 * g.rx + 1;
  g.d = d;
  g.learn_w = o.mode != ContextPoolMode::Uniform;
  g.learn_s = o.mode == ContextPoolMode::Full;
  g.s_min = o.s_min;
  g.s_range = *o.s_max - o.s_min;
  g.s_fixed = *o.s_fixed;
  g.eps = o.eps;
  return g;
}

// The pixel index (b, py, px) -> b H W + py W + px of slot k of output r, or -1 outside the image.
__device__ int64_t slot_pixel(const Grid2d& g, int64_t r, int64_t k) {
  const int64_t outputs = g.ho * g.wo;
  const int64_t bi = r / outputs, qy = (r % outputs) / g.wo, qx = r % g.wo;
  const int64_t py = qy * g.stride - g.ry + k / g.sx, px = qx * g.stride - g.rx + k % g.sx;
  if (py < 0 || py >= g.h || px < 0 || px >= g.w) return -1;
  return (bi * g.h + py) * g.w + px;
}

__device__ double slot_dist2(const Grid2d& g, int64_t k) {
  const double dy = static_cast<double>(g.ry - k / g.sx), dx = static_cast<double>(g.rx - k % g.sx);
  return dy * dy + dx * dx;
}

template <typename T>
__device__ double support_of(const T* b, int64_t r, const Grid2d& g) {
  return g.learn_s ? g.s_min + g.s_range * sigmoid(static_cast<double>(b[r])) : g.s_fixed;
}

// x [B, H, W, d], a [B, H, W], b [B, Ho, Wo] -> y [B, Ho, Wo, d], coef [B, Ho, Wo, S]
template <typename T>
__global__ void forward_kernel(const T* x, const T* a, const T* b, T* y, T* coef, int64_t rows, Grid2d g) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t slots = g.sy * g.sx;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const double s = support_of(b, r, g);
    const double inv_two_s2 = 1.0 / (2.0 * s * s);
    auto c_of = [&](int64_t k) {
      const int64_t j = slot_pixel(g, r, k);
      if (j < 0) return 0.0;
      const double wj = g.learn_w ? sigmoid(static_cast<double>(a[j])) : 1.0;
      return exp(-slot_dist2(g, k) * inv_two_s2) * wj;
    };
    double part = 0;
    for (int64_t k = lane; k < slots; k += kWarpSize) part += c_of(k);
    const double z = warp_sum(part) + g.eps;
    // p = c / z, exactly 0 where c = 0, outside the image included (as on the CPU: ops/cpu/context_pool2d.cpp).
    T* cr = coef + r * slots;
    for (int64_t k = lane; k < slots; k += kWarpSize) {
      const double c = c_of(k);
      cr[k] = static_cast<T>(c == 0.0 ? 0.0 : c / z);
    }
    __syncwarp();  // the row of P is read back by every lane
    for (int64_t e = lane; e < g.d; e += kWarpSize) {
      T acc = 0;
      for (int64_t k = 0; k < slots; ++k) {
        const T p = cr[k];
        if (p == T(0)) continue;  // also every slot outside the image
        acc += p * x[slot_pixel(g, r, k) * g.d + e];
      }
      y[r * g.d + e] = acc;
    }
  }
}

// Pass A, one warp per output r: m_r into m, and gb_r (when gb is wanted and s is learned).
template <typename T>
__global__ void pass_a_kernel(const T* x, const T* b, const T* coef, const T* gy, double* m, T* gb, int64_t rows,
                              Grid2d g) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t slots = g.sy * g.sx;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const T* cr = coef + r * slots;
    const T* gr = gy + r * g.d;
    double mr = 0;
    for (int64_t k = 0; k < slots; ++k) {
      const T p = cr[k];
      if (p == T(0)) continue;
      mr += static_cast<double>(p) * static_cast<double>(warp_dot(gr, x + slot_pixel(g, r, k) * g.d, g.d, lane));
    }
    if (lane == 0) m[r] = mr;
    if (gb == nullptr) continue;
    double ds_acc = 0;
    for (int64_t k = 0; k < slots; ++k) {
      const T p = cr[k];
      // dP again, the same bits as above (no buffer for it)
      const double dp = p != T(0) ? static_cast<double>(warp_dot(gr, x + slot_pixel(g, r, k) * g.d, g.d, lane)) : 0.0;
      ds_acc += (dp - mr) * static_cast<double>(p) * slot_dist2(g, k);
    }
    const double s = support_of(b, r, g);
    const double sb = sigmoid(static_cast<double>(b[r]));
    if (lane == 0) gb[r] = static_cast<T>(ds_acc / (s * s * s) * g.s_range * sb * (1.0 - sb));
  }
}

// The outputs along one axis whose window holds pixel p: q with |stride q - p| <= r, 0 <= q < n.
__device__ void outputs_holding(int64_t p, int64_t r, int64_t stride, int64_t n, int64_t& first, int64_t& last) {
  first = p - r + stride - 1 >= 0 ? (p - r + stride - 1) / stride : 0;
  last = (p + r) / stride < n - 1 ? (p + r) / stride : n - 1;
}

// Pass B, one warp per input pixel r = b H W + py W + px: gx_r and ga_r (each optional).
template <typename T>
__global__ void pass_b_kernel(const T* x, const T* a, const T* coef, const T* gy, const double* m, T* gx, T* ga,
                              int64_t rows, Grid2d g) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t slots = g.sy * g.sx, pixels = g.h * g.w;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bi = r / pixels, py = (r % pixels) / g.w, px = r % g.w;
    int64_t qy0, qy1, qx0, qx1;
    outputs_holding(py, g.ry, g.stride, g.ho, qy0, qy1);
    outputs_holding(px, g.rx, g.stride, g.wo, qx0, qx1);
    if (gx != nullptr) {
      for (int64_t e = lane; e < g.d; e += kWarpSize) {
        T acc = 0;
        for (int64_t qy = qy0; qy <= qy1; ++qy)
          for (int64_t qx = qx0; qx <= qx1; ++qx) {
            const int64_t q = (bi * g.ho + qy) * g.wo + qx;
            const T p = coef[q * slots + (py - qy * g.stride + g.ry) * g.sx + (px - qx * g.stride + g.rx)];
            if (p != T(0)) acc += p * gy[q * g.d + e];
          }
        gx[r * g.d + e] = acc;
      }
    }
    if (ga == nullptr) continue;
    double da = 0;
    if (g.learn_w) {
      for (int64_t qy = qy0; qy <= qy1; ++qy)
        for (int64_t qx = qx0; qx <= qx1; ++qx) {
          const int64_t q = (bi * g.ho + qy) * g.wo + qx;
          const T p = coef[q * slots + (py - qy * g.stride + g.ry) * g.sx + (px - qx * g.stride + g.rx)];
          const double dp = p != T(0) ? static_cast<double>(warp_dot(gy + q * g.d, x + r * g.d, g.d, lane)) : 0.0;
          da += (dp - m[q]) * static_cast<double>(p);
        }
      da *= 1.0 - sigmoid(static_cast<double>(a[r]));
    }
    if (lane == 0) ga[r] = static_cast<T>(da);  // uniform: w = 1 is not learned, 0
  }
}

template <typename T>
__global__ void zero_kernel(T* t, int64_t count) {
  CTXPOOL_CUDA_LOOP(r, count) t[r] = T(0);
}

void context_pool2d_forward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool2dOptions& o,
                            const Tensor& y, const Tensor& coef) {
  const Grid2d g = make_grid(x.sizes()[1], x.sizes()[2], x.sizes()[3], o);
  const int64_t rows = x.sizes()[0] * g.ho * g.wo;
  if (rows == 0) return;
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool2d", [&] {
    using T = scalar_t;
    forward_kernel<T><<<warp_blocks(rows), kThreads, 0, current_stream()>>>(
        data<T>(x), data<T>(a), data<T>(b), data<T>(y), data<T>(coef), rows, g);
    check_launch("context_pool2d forward kernel");
  });
}

void context_pool2d_backward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool2dOptions& o,
                             const Tensor& coef, const Tensor& gy, const Tensor& gx, const Tensor& ga,
                             const Tensor& gb) {
  const Grid2d g = make_grid(x.sizes()[1], x.sizes()[2], x.sizes()[3], o);
  const int64_t batch = x.sizes()[0], outputs = batch * g.ho * g.wo, pixels = batch * g.h * g.w;
  if (outputs == 0 || pixels == 0) return;
  set_device(x.device().index);
  const bool need_m = ga.defined() && g.learn_w;
  const bool need_gb = gb.defined() && g.learn_s;
  const Tensor m = need_m || need_gb ? empty({outputs}, TensorOptions(kFloat64).device(x.device())) : Tensor();
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool2d backward", [&] {
    using T = scalar_t;
    const cudaStream_t stream = current_stream();
    if (need_m || need_gb) {
      pass_a_kernel<T><<<warp_blocks(outputs), kThreads, 0, stream>>>(
          data<T>(x), data<T>(b), data<T>(coef), data<T>(gy), data<double>(m), need_gb ? data<T>(gb) : nullptr,
          outputs, g);
      check_launch("context_pool2d backward pass A kernel");
    }
    if (gb.defined() && !need_gb) {  // weights_only, uniform: s = s_fixed is not learned
      zero_kernel<T><<<blocks_for(outputs), kThreads, 0, stream>>>(data<T>(gb), outputs);
      check_launch("context_pool2d backward zero kernel");
    }
    if (gx.defined() || ga.defined()) {
      pass_b_kernel<T><<<warp_blocks(pixels), kThreads, 0, stream>>>(
          data<T>(x), data<T>(a), data<T>(coef), data<T>(gy), need_m ? data<double>(m) : nullptr,
          gx.defined() ? data<T>(gx) : nullptr, ga.defined() ? data<T>(ga) : nullptr, pixels, g);
      check_launch("context_pool2d backward pass B kernel");
    }
  });
}

}  // namespace

void add_context_pool2d_kernels(Kernels& k) {
  k.context_pool2d_forward = context_pool2d_forward;
  k.context_pool2d_backward = context_pool2d_backward;
}

}  // namespace ctxpool::cuda
