// conv2d's CPU kernels. conv2d_forward / conv2d_backward (at the end) are the fused convolution that
// conv2d runs on the CPU: the batch in chunks of a few images, each chunk's columns built in a buffer
// that stays in cache, multiplied at once and written straight into the output (see "Fused
// convolution" below). im2col2d / col2im2d are the composition's kernels (ops/conv2d.cpp), used for
// second derivatives and by the public im2col2d / col2im2d ops.
//
// The data movement behind both: im2col2d copies each kernel tap's view of the
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
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/scratch.h"
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

// Where tap (i, j) reads: input row oh * stride_h + row_offset of output row oh, and likewise for
// columns, and the output rows and columns that land inside the input.
struct Tap {
  int64_t row_offset, col_offset;
  Interval rows, cs;
};

// The kh * kw taps in (i, j) order for an h x w input: once per call rather than once per plane
// (two divisions each, which cost as much as copying a 7 x 7 plane).
std::vector<Tap> taps_of(const Conv2dGeometry& g, int64_t h, int64_t w) {
  std::vector<Tap> taps;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t row_offset = i * g.dil_h - g.pad_h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t col_offset = j * g.dil_w - g.pad_w;
      taps.push_back({row_offset, col_offset, valid_outputs(h, g.h_out, g.stride_h, row_offset),
                      valid_outputs(w, g.w_out, g.stride_w, col_offset)});
    }
  }
  return taps;
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

// Stride 1 and an output as wide as the input (a "same" convolution, e.g. 3x3 with padding 1): a
// tap's output plane is then the input plane shifted by one constant offset.
bool same_width_stride_1(const Conv2dGeometry& g, int64_t w) {
  return g.stride_h == 1 && g.stride_w == 1 && g.w_out == w;
}

// Zeroes columns [0, cs.begin) and [cs.end, w) of rows [rows.begin, rows.end) of a [*, w] plane:
// column by column, as one or two padding columns are all a 3x3 or 5x5 window has.
template <typename T>
void zero_padding_columns(T* plane, int64_t w, Interval rows, Interval cs) {
  for (int64_t c = 0; c < w; c = c + 1 == cs.begin ? cs.end : c + 1) {
    if (c >= cs.begin && c < cs.end) continue;
    for (int64_t oh = rows.begin; oh < rows.end; ++oh) plane[oh * w + c] = T(0);
  }
}

// One tap's output plane [h_out * w] in that case: output element o reads plane[o + shift] where it
// is inside the input, else 0. The valid rows are one block of memory on both sides, copied at once;
// the columns of those rows that fall on the left or right padding are zeroed afterwards.
template <typename T>
void copy_shifted_plane(const T* plane, int64_t w, int64_t shift, Interval rows, Interval cs, int64_t l, T* out) {
  const int64_t first = rows.begin * w + cs.begin, last = (rows.end - 1) * w + cs.end;
  std::fill(out, out + first, T(0));
  std::memcpy(out + first, plane + (first + shift), (last - first) * sizeof(T));
  std::fill(out + last, out + l, T(0));
  zero_padding_columns(out, w, rows, cs);
}

// The adjoint of copy_shifted_plane, adding one tap's plane `in` onto the input plane; `in` is
// scratch that may be overwritten: its entries on the padding columns are zeroed so that one loop
// over the valid block adds exactly the valid entries.
template <typename T>
void add_shifted_plane(T* in, int64_t w, int64_t shift, Interval rows, Interval cs, T* plane) {
  zero_padding_columns(in, w, rows, cs);
  const int64_t first = rows.begin * w + cs.begin, last = (rows.end - 1) * w + cs.end;
  for (int64_t o = first; o < last; ++o) plane[o + shift] += in[o];
}

// x [B, C, H, W] -> cols [C * kh * kw, B, h_out * w_out], both contiguous.
template <typename T>
void im2col_planes(const T* x, int64_t batch, int64_t channels, int64_t h, int64_t w, const Conv2dGeometry& g,
                   T* cols) {
  const int64_t l = g.h_out * g.w_out, tap_stride = batch * l;
  const std::vector<Tap> taps = taps_of(g, h, w);
  const bool same_width = same_width_stride_1(g, w);
  parallel_for(0, batch * channels, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* plane = x + p * h * w;
      T* segments = cols + first_segment(p / channels, p % channels, batch, g);
      for (size_t t = 0; t < taps.size(); ++t) {
        const auto [row_offset, col_offset, rows, cs] = taps[t];
        T* out = segments + static_cast<int64_t>(t) * tap_stride;
        if (same_width && rows.end > rows.begin && cs.end > cs.begin) {
          copy_shifted_plane(plane, w, row_offset * w + col_offset, rows, cs, l, out);
          continue;
        }
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
  });
}

// cols [C * kh * kw, B, h_out * w_out] -> x_grad [B, C, H, W] (zeroed first), both contiguous. Cols
// is `const T*`, or `T*` for scratch columns that may be overwritten (the fused backward's own
// buffer), which lets "same" convolutions add each tap in one loop (add_shifted_plane).
// Within a plane the taps are added in the order (i, j, oh, ow): fixed, whatever the thread count.
template <typename T, typename Cols>
void col2im_planes(Cols cols, int64_t batch, int64_t channels, int64_t h, int64_t w, const Conv2dGeometry& g,
                   T* x_grad) {
  constexpr bool kScratch = !std::is_const_v<std::remove_pointer_t<Cols>>;
  const int64_t tap_stride = batch * g.h_out * g.w_out;
  const std::vector<Tap> taps = taps_of(g, h, w);
  const bool same_width = same_width_stride_1(g, w);
  parallel_for(0, batch * channels, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* plane = x_grad + p * h * w;
      const Cols segments = cols + first_segment(p / channels, p % channels, batch, g);
      std::fill(plane, plane + h * w, T(0));
      for (size_t t = 0; t < taps.size(); ++t) {
        const auto [row_offset, col_offset, rows, cs] = taps[t];
        const Cols in = segments + static_cast<int64_t>(t) * tap_stride;
        if constexpr (kScratch) {
          if (same_width && rows.end > rows.begin && cs.end > cs.begin) {
            add_shifted_plane(in, w, row_offset * w + col_offset, rows, cs, plane);
            continue;
          }
        }
        for (int64_t oh = rows.begin; oh < rows.end; ++oh) {
          T* dst_row = plane + (oh * g.stride_h + row_offset) * w;
          const T* src_row = in + oh * g.w_out;
          if (g.stride_w == 1) {  // a loop the compiler vectorises
            for (int64_t ow = cs.begin; ow < cs.end; ++ow) dst_row[ow + col_offset] += src_row[ow];
          } else {
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
    col2im_planes<scalar_t, const scalar_t*>(cols.data_ptr<scalar_t>(), s[0], s[1], s[2], s[3], g,
                                             x_grad.data_ptr<scalar_t>());
  });
}

// ---- Fused convolution ----
// conv2d as im2col + GEMM one chunk of images at a time, rather than the composition's one column
// matrix for the whole batch: a chunk's columns [C_in * kh * kw, n * L] (n images, L = h_out * w_out)
// are built in a per-thread buffer of about kChunkBytes, so they are written and read back in cache
// instead of through memory, and the product lands in [B, C_out, L] order without a permute. Chunks
// run in parallel (each GEMM on one thread); their size depends only on the shapes, never on the thread
// count, and the weight gradient sums the chunks' products in chunk order, so every result is the same
// for any number of threads.

constexpr int64_t kChunkBytes = 512 * 1024;  // the columns of one chunk: about half an L2 cache
constexpr int64_t kMinChunks = 16;           // so that a small batch still spreads evenly over threads

// Planes of at least this many outputs are multiplied one image at a time, reading and writing the
// images' [C_out, L] blocks in place (a tile row wastes at most 1/8 of its columns on the plane's
// edge). Smaller planes go through one product per chunk, whose [C_out, n * L] layout costs a copy
// to or from [n, C_out, L] but keeps tiles full.
constexpr int64_t kPerImageMinL = 256;

struct ConvShape {
  int64_t batch, c_in, h, w, c_out, groups;
  int64_t rows;      // C_in * kh * kw: the rows of the columns
  int64_t l;         // h_out * w_out
  int64_t per_chunk; // images per chunk

  int64_t group_rows() const { return rows / groups; }     // (C_in / G) * kh * kw: one group's rows
  int64_t group_out() const { return c_out / groups; }     // C_out / G
  int64_t chunks() const { return (batch + per_chunk - 1) / per_chunk; }
  // Whether a chunk of n images is multiplied image by image, in place (else as one [C_out, n * L]).
  bool per_image(int64_t n) const { return n == 1 || l >= kPerImageMinL; }
};

template <typename T>
ConvShape conv_shape(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups) {
  const Shape& s = x.sizes();
  ConvShape c{s[0], s[1], s[2], s[3], weight.sizes()[0], groups, s[1] * g.kh * g.kw, g.h_out * g.w_out, 1};
  const int64_t image_bytes = c.rows * c.l * static_cast<int64_t>(sizeof(T));
  const int64_t even_split = (c.batch + kMinChunks - 1) / kMinChunks;
  c.per_chunk = std::clamp<int64_t>(kChunkBytes / std::max<int64_t>(image_bytes, 1), 1, even_split);
  return c;
}

// src [a, b, l] -> dst [b, a, l], rows of l copied whole: a chunk's product in [C_out, n, L] order
// to the output's [n, C_out, L], and the gradient back.
template <typename T>
void swap_leading_dims(const T* src, int64_t a, int64_t b, int64_t l, T* dst) {
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) std::memcpy(dst + (j * a + i) * l, src + (i * b + j) * l, l * sizeof(T));
}

// out [B, C_out, L] <- weight [C_out, rows] @ columns, chunk by chunk.
template <typename T>
void conv_forward(const T* x, const T* weight, const Conv2dGeometry& g, const ConvShape& c, T* out) {
  const int64_t group_weight = c.group_out() * c.group_rows();
  parallel_for(0, c.chunks(), 1, [&](int64_t first, int64_t last) {
    T* cols = thread_scratch<T>(2, c.rows * c.per_chunk * c.l);
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t b0 = chunk * c.per_chunk, n = std::min(c.per_chunk, c.batch - b0), width = n * c.l;
      im2col_planes(x + b0 * c.c_in * c.h * c.w, n, c.c_in, c.h, c.w, g, cols);  // [rows, n, L]
      T* chunk_out = out + b0 * c.c_out * c.l;
      if (c.per_image(n)) {  // straight into each image's [C_out, L]
        for (int64_t img = 0; img < n; ++img)
          for (int64_t grp = 0; grp < c.groups; ++grp)
            gemm<T>(false, false, c.group_out(), c.l, c.group_rows(), weight + grp * group_weight, c.group_rows(),
                    cols + grp * c.group_rows() * width + img * c.l, width,
                    chunk_out + (img * c.c_out + grp * c.group_out()) * c.l, c.l);
        continue;
      }
      T* product = thread_scratch<T>(3, c.c_out * width);
      for (int64_t grp = 0; grp < c.groups; ++grp)
        gemm<T>(false, false, c.group_out(), width, c.group_rows(), weight + grp * group_weight, c.group_rows(),
                cols + grp * c.group_rows() * width, width, product + grp * c.group_out() * width, width);
      swap_leading_dims(product, c.c_out, n, c.l, chunk_out);  // [C_out, n, L] -> [n, C_out, L]
    }
  });
}

// grad [B, C_out, L] -> grad_x [B, C_in, H, W] (when non-null) and grad_weight [C_out, rows] (when
// non-null), chunk by chunk; the weight gradient's per-chunk products are summed in chunk order.
// `partial` holds chunks() weight gradients (when grad_weight is non-null).
template <typename T>
void conv_backward(const T* x, const T* weight, const T* grad, const Conv2dGeometry& g, const ConvShape& c,
                   T* grad_x, T* grad_weight, T* partial) {
  const int64_t weight_numel = c.c_out * c.group_rows(), group_weight = c.group_out() * c.group_rows();
  parallel_for(0, c.chunks(), 1, [&](int64_t first, int64_t last) {
    T* cols = thread_scratch<T>(2, c.rows * c.per_chunk * c.l);
    for (int64_t chunk = first; chunk < last; ++chunk) {
      const int64_t b0 = chunk * c.per_chunk, n = std::min(c.per_chunk, c.batch - b0), width = n * c.l;
      const T* grad_chunk = grad + b0 * c.c_out * c.l;
      // The gradient as the products see it: `images` blocks of rows [group_out, span] (row stride span)
      // per group, at grad_at(img, grp): each image's in place, or the chunk's gathered into
      // [C_out, n * L] as one block.
      const bool per_image = c.per_image(n);
      const int64_t images = per_image ? n : 1, span = per_image ? c.l : width;
      T* grad_rows = per_image ? nullptr : thread_scratch<T>(3, c.c_out * width);
      if (!per_image) swap_leading_dims(grad_chunk, n, c.c_out, c.l, grad_rows);  // [n, C_out, L] -> [C_out, n, L]
      auto grad_at = [&](int64_t img, int64_t grp) {
        return per_image ? grad_chunk + (img * c.c_out + grp * c.group_out()) * c.l
                         : grad_rows + grp * c.group_out() * width;
      };
      if (grad_weight != nullptr) {  // partial[chunk] = sum over images of rows @ columns^T, per group
        im2col_planes(x + b0 * c.c_in * c.h * c.w, n, c.c_in, c.h, c.w, g, cols);
        for (int64_t img = 0; img < images; ++img)
          for (int64_t grp = 0; grp < c.groups; ++grp)
            gemm<T>(false, true, c.group_out(), c.group_rows(), span, grad_at(img, grp), span,
                    cols + grp * c.group_rows() * width + img * c.l, width,
                    partial + chunk * weight_numel + grp * group_weight, c.group_rows(), /*accumulate=*/img > 0);
      }
      if (grad_x != nullptr) {  // columns' gradient = weight^T @ rows, per group, then added back onto the images
        for (int64_t img = 0; img < images; ++img)
          for (int64_t grp = 0; grp < c.groups; ++grp)
            gemm<T>(true, false, c.group_rows(), span, c.group_out(), weight + grp * group_weight, c.group_rows(),
                    grad_at(img, grp), span, cols + grp * c.group_rows() * width + img * c.l, width);
        col2im_planes<T, T*>(cols, n, c.c_in, c.h, c.w, g, grad_x + b0 * c.c_in * c.h * c.w);
      }
    }
  });
  if (grad_weight == nullptr) return;
  // grad_weight = partial[0] + partial[1] + ... in chunk order, each pass one vectorised loop.
  parallel_for(0, weight_numel, 4096, [&](int64_t e0, int64_t e1) {
    std::copy(partial + e0, partial + e1, grad_weight + e0);
    for (int64_t chunk = 1; chunk < c.chunks(); ++chunk) {
      const T* part = partial + chunk * weight_numel;
      for (int64_t e = e0; e < e1; ++e) grad_weight[e] += part[e];
    }
  });
}

void conv2d_forward(const Tensor& x, const Tensor& weight, const Conv2dGeometry& g, int64_t groups,
                    const Tensor& out) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    conv_forward<scalar_t>(x.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(), g,
                           conv_shape<scalar_t>(x, weight, g, groups), out.data_ptr<scalar_t>());
  });
}

void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad, const Conv2dGeometry& g,
                     int64_t groups, const Tensor& grad_x, const Tensor& grad_weight) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "conv2d backward", [&] {
    using T = scalar_t;
    const ConvShape c = conv_shape<T>(x, weight, g, groups);
    // From the tensor allocator's cache: the same size every step (fresh pages would fault).
    const Tensor partial = grad_weight.defined() ? empty({c.chunks() * grad_weight.numel()}, x.dtype()) : Tensor();
    conv_backward<T>(x.data_ptr<T>(), weight.data_ptr<T>(), grad.data_ptr<T>(), g, c,
                     grad_x.defined() ? grad_x.data_ptr<T>() : nullptr,
                     grad_weight.defined() ? grad_weight.data_ptr<T>() : nullptr,
                     partial.defined() ? partial.data_ptr<T>() : nullptr);
  });
}

}  // namespace

void add_conv2d_kernels(Kernels& k) {
  k.im2col2d = im2col2d;
  k.col2im2d = col2im2d;
  k.conv2d_forward = conv2d_forward;
  k.conv2d_backward = conv2d_backward;
}

}  // namespace ctxpool::cpu
