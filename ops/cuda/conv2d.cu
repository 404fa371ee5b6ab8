// 2-D convolution's data movement on CUDA: im2col2d and its adjoint col2im2d, with the semantics and
// the cols layout [C * kh * kw, B, h_out * w_out] of ops/cpu/conv2d.cpp.
//
// No atomics: col2im2d gives each input-gradient element to one thread, which finds every (tap, output)
// that read it and adds them in the CPU's order (taps i, then j; a tap reads an input element from at
// most one output), so the result is the CPU's bits on every run.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_conv2d_kernels at the end).
namespace {

// The sizes both kernels need, passed by value.
struct Conv2dShape {
  int64_t batch, channels, h, w;
};

// The output o in [0, out_size) with o * stride + offset == in, or -1 when no output reads `in`.
__device__ inline int64_t output_reading(int64_t in, int64_t offset, int64_t stride, int64_t out_size) {
  const int64_t num = in - offset;
  if (num < 0 || num % stride != 0) return -1;
  const int64_t o = num / stride;
  return o < out_size ? o : -1;
}

// x [B, C, H, W] -> cols [C * kh * kw, B, h_out * w_out]: one thread per cols element, which reads
// the input element its tap and output point at, or writes 0 where that is padding.
template <typename T>
__global__ void im2col2d_kernel(const T* x, T* cols, Conv2dShape s, Conv2dGeometry g, int64_t n) {
  const int64_t l = g.h_out * g.w_out;
  CTXPOOL_CUDA_LOOP(e, n) {
    const int64_t ow = e % g.w_out;
    const int64_t oh = (e / g.w_out) % g.h_out;
    const int64_t b = (e / l) % s.batch;
    const int64_t row = e / (l * s.batch);  // (c * kh + i) * kw + j
    const int64_t j = row % g.kw;
    const int64_t i = (row / g.kw) % g.kh;
    const int64_t c = row / (g.kw * g.kh);
    const int64_t ih = oh * g.stride_h - g.pad_h + i * g.dil_h;
    const int64_t iw = ow * g.stride_w - g.pad_w + j * g.dil_w;
    const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
    cols[e] = inside ? x[((b * s.channels + c) * s.h + ih) * s.w + iw] : T(0);
  }
}

// cols [C * kh * kw, B, h_out * w_out] -> x_grad [B, C, H, W]: one thread per x_grad element, summing
// from 0 over the taps (i, j) in the CPU's order the one cols entry of each that read this element.
template <typename T>
__global__ void col2im2d_kernel(const T* cols, T* x_grad, Conv2dShape s, Conv2dGeometry g, int64_t n) {
  const int64_t l = g.h_out * g.w_out;
  const int64_t tap_stride = s.batch * l;  // from tap (i, j)'s segment to the next one's
  CTXPOOL_CUDA_LOOP(e, n) {
    const int64_t x = e % s.w;
    const int64_t y = (e / s.w) % s.h;
    const int64_t c = (e / (s.w * s.h)) % s.channels;
    const int64_t b = e / (s.w * s.h * s.channels);
    // Where channel c's tap (0, 0) segment for image b starts.
    const T* segments = cols + (c * g.kh * g.kw * s.batch + b) * l;
    T total = T(0);
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t oh = output_reading(y, i * g.dil_h - g.pad_h, g.stride_h, g.h_out);
      if (oh < 0) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t ow = output_reading(x, j * g.dil_w - g.pad_w, g.stride_w, g.w_out);
        if (ow < 0) continue;
        total += segments[(i * g.kw + j) * tap_stride + oh * g.w_out + ow];
      }
    }
    x_grad[e] = total;
  }
}

Conv2dShape shape_of(const Tensor& t) {
  const Shape& s = t.sizes();
  return {s[0], s[1], s[2], s[3]};
}

void im2col2d(const Tensor& x, const Conv2dGeometry& g, const Tensor& cols) {
  const int64_t n = cols.numel();
  if (n == 0) return;
  const Conv2dShape s = shape_of(x);
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "im2col2d", [&] {
    im2col2d_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(data<scalar_t>(x),
                                                                                data<scalar_t>(cols), s, g, n);
  });
  check_launch("im2col2d_kernel");
}

void col2im2d(const Tensor& cols, const Conv2dGeometry& g, const Tensor& x_grad) {
  const int64_t n = x_grad.numel();
  if (n == 0) return;
  const Conv2dShape s = shape_of(x_grad);
  set_device(x_grad.device().index);
  // Every x_grad element is written (0 where no tap read it), so no zeroing pass is needed; with an
  // empty cols (h_out or w_out 0) no tap reads anything and the kernel writes zeros.
  CTXPOOL_DISPATCH_FLOAT(x_grad.dtype(), "col2im2d", [&] {
    col2im2d_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(data<scalar_t>(cols),
                                                                                data<scalar_t>(x_grad), s, g, n);
  });
  check_launch("col2im2d_kernel");
}

}  // namespace

void add_conv2d_kernels(Kernels& k) {
  k.im2col2d = im2col2d;
  k.col2im2d = col2im2d;
}

}  // namespace ctxpool::cuda
