// The data movement behind conv2d (ops/conv2d.cpp): im2col2d copies each kernel tap's view of the
// (zero-padded) input into a row of the column matrix cols [C * kh * kw, B, L], and col2im2d adds
// such rows back onto the input (its adjoint). Both work on one (batch, channel) plane at a time:
// the segments of cols that a plane reads or writes belong to no other plane, so the planes run in
// parallel and every sum is formed by one thread in a fixed order (identical for any thread count).
//
// For tap (i, j) the input row of output row oh is ih = oh * stride_h + (i * dil_h - pad_h) and the
// input column of output column ow is iw = ow * stride_w + (j * dil_w - pad_w): an affine map, so
// the outputs that land inside the input form one interval per axis (valid_outputs), and the loops
// copy that interval and zero the rest without testing every element.
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_conv2d_kernels at the end).
namespace {

struct Interval {
  int64_t begin, end;  // [begin, end)
};

// The outputs o in [0, out_size) with o * stride + offset in [0, in_size).
Interval valid_outputs(int64_t in_size, int64_t out_size, int64_t stride, int64_t offset) {
  // o * stride + offset >= 0 <=> o >= ceil(-offset / stride);
  // o * stride + offset < in_size <=> o <= (in_size - 1 - offset) / stride.
  const int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t end = in_size - 1 - offset < 0 ? 0 : (in_size - 1 - offset) / stride + 1;
  const int64_t b = std::min(begin, out_size);
  return {b, std::clamp(end, b, out_size)};
}

// Work per plane (kh * kw * h_out * w_out elements) -> planes per parallel chunk, so that tiny
// planes are not spread over threads one by one.
int64_t plane_grain(const Conv2dGeometry& g) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.kh * g.kw * g.h_out * g.w_out));
}

// Where the segment of cols for channel c's tap 0 of image b starts in cols [C * kh * kw, B, L]; the
// tap (i, j) segment is (i * kw + j) * B * L further.
int64_t first_segment(int64_t b, int64_t c, int64_t batch, const Conv2dGeometry& g) {
  return (c * g.kh * g.kw * batch + b) * g.h_out * g.w_out;
}

// x [B, C, H, W] -> cols [C * kh * kw, B, h_out * w_out], both contiguous.
template <typename T>
void im2col_planes(const T* x, int64_t batch, int64_t channels, int64_t h, int64_t w, const Conv2dGeometry& g,
                   T* cols) {
  const int64_t l = g.h_out * g.w_out, tap_stride = batch * l;
  parallel_for(0, batch * channels, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* plane = x + p * h * w;
      T* segments = cols + first_segment(p / channels, p % channels, batch, g);
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t row_offset = i * g.dil_h - g.pad_h;
        const Interval rows = valid_outputs(h, g.h_out, g.stride_h, row_offset);
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t col_offset = j * g.dil_w - g.pad_w;
          const Interval cs = valid_outputs(w, g.w_out, g.stride_w, col_offset);
          T* out = segments + (i * g.kw + j) * tap_stride;
          // Output rows that read the top or bottom padding are all zero.
          std::fill(out, out + rows.begin * g.w_out, T(0));
          std::fill(out + rows.end * g.w_out, out + l, T(0));
          for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
            const T* in_row = plane + (oh * g.stride_h + row_offset) * w;
            T* out_row = out + oh * g.w_out;
            std::fill(out_row, out_row + cs.begin, T(0));
            if (g.stride_w == 1 && cs.end > cs.begin) {
              std::memcpy(out_row + cs.begin, in_row + cs.begin + col_offset, (cs.end - cs.begin) * sizeof(T));
            } else {
              for (int64_t ow = cs.begin; ow < cs.end; ++ow) out_row[ow] = in_row[ow * g.stride_w + col_offset];
            }
            std::fill(out_row + cs.end, out_row + g.w_out, T(0));
          }
        }
      }
    }
  });
}

// cols [C * kh * kw, B, h_out * w_out] -> x_grad [B, C, H, W] (zeroed first), both contiguous.
// Within a plane the taps are added in the order (i, j, oh, ow): fixed, whatever the thread count.
template <typename T>
void col2im_planes(const T* cols, int64_t batch, int64_t channels, int64_t h, int64_t w, const Conv2dGeometry& g,
                   T* x_grad) {
  const int64_t l = g.h_out * g.w_out, tap_stride = batch * l;
  parallel_for(0, batch * channels, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* plane = x_grad + p * h * w;
      const T* segments = cols + first_segment(p / channels, p % channels, batch, g);
      std::fill(plane, plane + h * w, T(0));
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t row_offset = i * g.dil_h - g.pad_h;
        const Interval rows = valid_outputs(h, g.h_out, g.stride_h, row_offset);
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t col_offset = j * g.dil_w - g.pad_w;
          const Interval cs = valid_outputs(w, g.w_out, g.stride_w, col_offset);
          const T* in = segments + (i * g.kw + j) * tap_stride;
          for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
            T* dst_row = plane + (oh * g.stride_h + row_offset) * w;
            const T* src_row = in + oh * g.w_out;
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) dst_row[ow * g.stride_w + col_offset] += src_row[ow];
          }
        }
      }
    }
  });
}

void im2col2d(const Tensor& x, const Conv2dGeometry& g, const Tensor& cols) {
  const Shape& s = x.sizes();
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "im2col2d", [&] {
    im2col_planes<scalar_t>(x.data_ptr<scalar_t>(), s[0], s[1], s[2], s[3], g, cols.data_ptr<scalar_t>());
  });
}

void col2im2d(const Tensor& cols, const Conv2dGeometry& g, const Tensor& x_grad) {
  const Shape& s = x_grad.sizes();
  CTXPOOL_DISPATCH_FLOAT(x_grad.dtype(), "col2im2d", [&] {
    col2im_planes<scalar_t>(cols.data_ptr<scalar_t>(), s[0], s[1], s[2], s[3], g, x_grad.data_ptr<scalar_t>());
  });
}

}  // namespace

void add_conv2d_kernels(Kernels& k) {
  k.im2col2d = im2col2d;
  k.col2im2d = col2im2d;
}

}  // namespace ctxpool::cpu
