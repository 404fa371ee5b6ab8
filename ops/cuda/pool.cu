// 2-D pooling kernels on CUDA: max (values + argmax indices, and the gradient's scatter to them),
// average and adaptive average (forward and adjoint), with the semantics of ops/cpu/pool.cpp: the
// same windows, tie rule, divisors and double accumulation, so the results are the CPU's bits.
//
// No atomics: every output and every input-gradient element has one writer, which adds its terms in
// the CPU's order (output order for the backwards), so the results are the same on every run.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_pool_kernels at the end).
namespace {

// The last two sizes of t, and how many planes of that size it holds.
struct Planes {
  int64_t count, h, w;
};
Planes planes_of(const Tensor& t) {
  const int64_t h = t.sizes()[t.dim() - 2], w = t.sizes()[t.dim() - 1];
  return {h * w > 0 ? t.numel() / (h * w) : 0, h, w};
}

__device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- max pooling ----

// x [..., H, W] -> out, indices [..., h_out, w_out]: one thread per output, scanning its dilated window
// as the CPU does: from -inf, a larger value or a NaN replaces the best, so the first maximum wins.
template <typename T>
__global__ void max_pool2d_forward_kernel(const T* x, T* out, int64_t* indices, Planes in, Conv2dGeometry g,
                                          int64_t n) {
  const int64_t out_plane = g.h_out * g.w_out;
  CTXPOOL_CUDA_LOOP(e, n) {
    const int64_t ow = e % g.w_out, oh = (e / g.w_out) % g.h_out, p = e / out_plane;
    const T* plane = x + p * in.h * in.w;
    // First tap inside the input (taps before it read padding), and one past the last reachable position.
    const int64_t h_start = oh * g.stride_h - g.pad_h, w_start = ow * g.stride_w - g.pad_w;
    const int64_t h_first = h_start < 0 ? h_start + (-h_start + g.dil_h - 1) / g.dil_h * g.dil_h : h_start;
    const int64_t w_first = w_start < 0 ? w_start + (-w_start + g.dil_w - 1) / g.dil_w * g.dil_w : w_start;
    const int64_t h_end = min64(h_start + (g.kh - 1) * g.dil_h + 1, in.h);
    const int64_t w_end = min64(w_start + (g.kw - 1) * g.dil_w + 1, in.w);
    T best = -std::numeric_limits<T>::infinity();
    int64_t best_index = h_first < h_end && w_first < w_end ? h_first * in.w + w_first : -1;
    for (int64_t h = h_first; h < h_end; h += g.dil_h) {
      for (int64_t w = w_first; w < w_end; w += g.dil_w) {
        const T v = plane[h * in.w + w];
        if (v > best || v != v) {  // v != v: NaN
          best = v;
          best_index = h * in.w + w;
        }
      }
    }
    out[e] = best;
    indices[e] = best_index;
  }
}

// grad, indices [..., h_out, w_out] -> x_grad [..., H, W]. The entry gets no window geometry, so a
// thread cannot tell which outputs can hold its element; instead one block per plane, where thread t
// owns the plane positions q with q % blockDim.x == t: it zeroes them, then walks all the plane's
// outputs in order (the indices are read by the whole block at once) and adds the gradient of those
// whose index is one of its positions. Each x_grad element thus has one writer adding in output order.
template <typename T>
__global__ void max_pool2d_backward_kernel(const T* grad, const int64_t* indices, T* x_grad, int64_t planes,
                                           int64_t in_plane, int64_t out_plane) {
  const int64_t t = threadIdx.x, lanes = blockDim.x;
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    T* plane = x_grad + p * in_plane;
    for (int64_t q = t; q < in_plane; q += lanes) plane[q] = T(0);
    const int64_t* idx = indices + p * out_plane;
    const T* g = grad + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) {
      const int64_t q = idx[o];
      // An index outside the plane (-1: a window with no input position) is never made by the op; dropped.
      if (q >= 0 && q < in_plane && q % lanes == t) plane[q] += g[o];
    }
  }
}

// ---- average pooling ----

// One averaging window: input rows [h0, h1) and columns [w0, w1), and the divisor of its sum.
struct Window {
  int64_t h0, h1, w0, w1;
  double divisor;
};

// PyTorch's avg_pool2d window (as the CPU's): its size counted within the padded input, then clipped.
__device__ inline Window avg_window(const Conv2dGeometry& g, bool count_include_pad, int64_t in_h, int64_t in_w,
                                    int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  const int64_t h1 = min64(h0 + g.kh, in_h + g.pad_h), w1 = min64(w0 + g.kw, in_w + g.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  Window win{max64(h0, 0), min64(h1, in_h), max64(w0, 0), min64(w1, in_w), 0.0};
  win.divisor = static_cast<double>(count_include_pad ? padded_size : (win.h1 - win.h0) * (win.w1 - win.w0));
  return win;
}

// PyTorch's adaptive window: [floor(i * in / out), ceil((i + 1) * in / out)).
__device__ inline Window adaptive_window(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int64_t oh,
                                         int64_t ow) {
  Window win{oh * in_h / out_h, ((oh + 1) * in_h + out_h - 1) / out_h, ow * in_w / out_w,
             ((ow + 1) * in_w + out_w - 1) / out_w, 0.0};
  win.divisor = static_cast<double>((win.h1 - win.h0) * (win.w1 - win.w0));
  return win;
}

// The windows of avg_pool2d, and the outputs whose windows can hold input position (y, x): an
// unclipped window [o * stride - pad, + k) holds y for o in [ceil((y + pad - k + 1) / stride),
// floor((y + pad) / stride)]. The kernels still test each candidate window.
struct AvgWindows {
  Conv2dGeometry g;
  bool count_include_pad;
  int64_t in_h, in_w, out_h, out_w;

  __device__ Window at(int64_t oh, int64_t ow) const { return avg_window(g, count_include_pad, in_h, in_w, oh, ow); }
  __device__ void rows_holding(int64_t y, int64_t& lo, int64_t& hi) const {
    candidates(y, g.pad_h, g.kh, g.stride_h, out_h, lo, hi);
  }
  __device__ void cols_holding(int64_t x, int64_t& lo, int64_t& hi) const {
    candidates(x, g.pad_w, g.kw, g.stride_w, out_w, lo, hi);
  }
  __device__ static void candidates(int64_t y, int64_t pad, int64_t k, int64_t stride, int64_t out, int64_t& lo,
                                    int64_t& hi) {
    const int64_t first = y + pad - k + 1;
    lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    hi = min64((y + pad) / stride, out - 1);
  }
};

// The adaptive windows, and the outputs whose windows can hold y: floor(y * out / in) ..
// ceil((y + 1) * out / in) - 1.
struct AdaptiveWindows {
  int64_t in_h, in_w, out_h, out_w;

  __device__ Window at(int64_t oh, int64_t ow) const { return adaptive_window(in_h, in_w, out_h, out_w, oh, ow); }
  __device__ void rows_holding(int64_t y, int64_t& lo, int64_t& hi) const { candidates(y, in_h, out_h, lo, hi); }
  __device__ void cols_holding(int64_t x, int64_t& lo, int64_t& hi) const { candidates(x, in_w, out_w, lo, hi); }
  __device__ static void candidates(int64_t y, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
    lo = y * out / in;
    hi = min64(((y + 1) * out + in - 1) / in - 1, out - 1);
  }
};

// x [..., H, W] -> out [..., OH, OW]: one thread per output, summing its window in double in the
// CPU's (row-major) order, then dividing (0 for an empty window).
template <typename T, typename Windows>
__global__ void average_forward_kernel(const T* x, T* out, Windows windows, int64_t n) {
  const int64_t out_plane = windows.out_h * windows.out_w;
  CTXPOOL_CUDA_LOOP(e, n) {
    const int64_t ow = e % windows.out_w, oh = (e / windows.out_w) % windows.out_h, p = e / out_plane;
    const T* plane = x + p * windows.in_h * windows.in_w;
    const Window win = windows.at(oh, ow);
    double total = 0;
    for (int64_t h = win.h0; h < win.h1; ++h)
      for (int64_t w = win.w0; w < win.w1; ++w) total += plane[h * windows.in_w + w];
    const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
    out[e] = empty ? T(0) : static_cast<T>(total / win.divisor);
  }
}

// grad [..., OH, OW] -> x_grad [..., H, W]: one thread per x_grad element, adding from 0 the share
// grad / divisor (rounded to T, as the CPU's) of every output whose window holds it, in output order.
template <typename T, typename Windows>
__global__ void average_backward_kernel(const T* grad, T* x_grad, Windows windows, int64_t n) {
  const int64_t in_plane = windows.in_h * windows.in_w, out_plane = windows.out_h * windows.out_w;
  CTXPOOL_CUDA_LOOP(e, n) {
    const int64_t x = e % windows.in_w, y = (e / windows.in_w) % windows.in_h, p = e / in_plane;
    const T* grad_plane = grad + p * out_plane;
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    windows.rows_holding(y, oh_lo, oh_hi);
    windows.cols_holding(x, ow_lo, ow_hi);
    T total = T(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        const Window win = windows.at(oh, ow);
        if (y < win.h0 || y >= win.h1 || x < win.w0 || x >= win.w1) continue;
        total += static_cast<T>(grad_plane[oh * windows.out_w + ow] / win.divisor);
      }
    }
    x_grad[e] = total;
  }
}

template <typename Windows>
void average_forward(const Tensor& x, const Tensor& out, const char* op, const Windows& windows) {
  const int64_t n = out.numel();
  if (n == 0) return;
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), op, [&] {
    average_forward_kernel<scalar_t, Windows><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(out), windows, n);
  });
  check_launch(op);
}

template <typename Windows>
void average_backward(const Tensor& grad, const Tensor& x_grad, const char* op, const Windows& windows) {
  const int64_t n = x_grad.numel();
  if (n == 0) return;
  set_device(x_grad.device().index);
  // Every x_grad element is written (0 where no window holds it), so no zeroing pass is needed.
  CTXPOOL_DISPATCH_FLOAT(x_grad.dtype(), op, [&] {
    average_backward_kernel<scalar_t, Windows><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<scalar_t>(grad), data<scalar_t>(x_grad), windows, n);
  });
  check_launch(op);
}

// ---- the entries ----

void max_pool2d_forward(const Tensor& x, const Conv2dGeometry& g, const Tensor& out, const Tensor& indices) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Planes in = planes_of(x);
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    max_pool2d_forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(out), data<int64_t>(indices), in, g, n);
  });
  check_launch("max_pool2d_forward_kernel");
}

void max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Tensor& x_grad) {
  if (x_grad.numel() == 0) return;
  const Planes in = planes_of(x_grad), out = planes_of(grad);
  const int64_t blocks = in.count < kMaxBlocks ? in.count : kMaxBlocks;  // the kernel loops over the rest
  set_device(x_grad.device().index);
  CTXPOOL_DISPATCH_FLOAT(x_grad.dtype(), "max_pool2d backward", [&] {
    max_pool2d_backward_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, current_stream()>>>(
        data<scalar_t>(grad), data<int64_t>(indices), data<scalar_t>(x_grad), in.count, in.h * in.w,
        out.h * out.w);
  });
  check_launch("max_pool2d_backward_kernel");
}

void avg_pool2d_forward(const Tensor& x, const Conv2dGeometry& g, bool count_include_pad, const Tensor& out) {
  const Planes in = planes_of(x);
  average_forward(x, out, "avg_pool2d", AvgWindows{g, count_include_pad, in.h, in.w, g.h_out, g.w_out});
}

void avg_pool2d_backward(const Tensor& grad, const Conv2dGeometry& g, bool count_include_pad, const Tensor& x_grad) {
  const Planes in = planes_of(x_grad);
  average_backward(grad, x_grad, "avg_pool2d backward",
                   AvgWindows{g, count_include_pad, in.h, in.w, g.h_out, g.w_out});
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out) {
  const Planes in = planes_of(x), o = planes_of(out);
  average_forward(x, out, "adaptive_avg_pool2d", AdaptiveWindows{in.h, in.w, o.h, o.w});
}

void adaptive_avg_pool2d_backward(const Tensor& grad, const Tensor& x_grad) {
  const Planes in = planes_of(x_grad), o = planes_of(grad);
  average_backward(grad, x_grad, "adaptive_avg_pool2d backward", AdaptiveWindows{in.h, in.w, o.h, o.w});
}

}  // namespace

void add_pool_kernels(Kernels& k) {
  k.max_pool2d_forward = max_pool2d_forward;
  k.max_pool2d_backward = max_pool2d_backward;
  k.avg_pool2d_forward = avg_pool2d_forward;
  k.avg_pool2d_backward = avg_pool2d_backward;
  k.adaptive_avg_pool2d_forward = adaptive_avg_pool2d_forward;
  k.adaptive_avg_pool2d_backward = adaptive_avg_pool2d_backward;
}

}  // namespace ctxpool::cuda
