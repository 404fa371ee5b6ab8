// 2-D pooling kernels: max (values + argmax indices, and the scatter of the gradient to them),
// average and adaptive average (forward and adjoint). Every kernel reads contiguous [..., H, W] data
// and gives each (b, c) plane to one task, so the sums and scatters of a plane always run in the same
// order: results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_pool_kernels at the end).
namespace {

int64_t plane_grain(int64_t plane_size) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(plane_size, 1)); }

// The last two sizes of t, and how many planes of that size it holds.
struct Planes {
  int64_t count, h, w;
};
Planes planes_of(const Tensor& t) {
  const int64_t h = t.sizes()[t.dim() - 2], w = t.sizes()[t.dim() - 1];
  return {h * w > 0 ? t.numel() / (h * w) : 0, h, w};
}

// First valid tap of a dilated window starting at `start` (possibly negative), and one past the last
// input position it can reach: the taps are first, first + dilation, ... < end.
struct Taps {
  int64_t first, end;
};
Taps taps(int64_t start, int64_t kernel, int64_t dilation, int64_t size) {
  int64_t first = start;
  while (first < 0) first += dilation;
  return {first, std::min(start + (kernel - 1) * dilation + 1, size)};
}

// x [..., H, W] -> out, indices [..., h_out, w_out]
void max_pool2d_forward(const Tensor& x, const Conv2dGeometry& g, const Tensor& out, const Tensor& indices) {
  const Planes in = planes_of(x);
  const int64_t out_plane = g.h_out * g.w_out;
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    int64_t* ip = indices.data_ptr<int64_t>();
    parallel_for(0, in.count, plane_grain(in.h * in.w), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* plane = xp + p * in.h * in.w;
        for (int64_t oh = 0; oh < g.h_out; ++oh) {
          const Taps rows = taps(oh * g.stride_h - g.pad_h, g.kh, g.dil_h, in.h);
          for (int64_t ow = 0; ow < g.w_out; ++ow) {
            const Taps cols = taps(ow * g.stride_w - g.pad_w, g.kw, g.dil_w, in.w);
            // As PyTorch's CPU kernel: start from -inf at the first tap; a NaN replaces the running maximum.
            T best = -std::numeric_limits<T>::infinity();
            int64_t best_index = rows.first < rows.end && cols.first < cols.end ? rows.first * in.w + cols.first : -1;
            for (int64_t h = rows.first; h < rows.end; h += g.dil_h) {
              for (int64_t w = cols.first; w < cols.end; w += g.dil_w) {
                const T v = plane[h * in.w + w];
                if (v > best || std::isnan(v)) {
                  best = v;
                  best_index = h * in.w + w;
                }
              }
            }
            op[p * out_plane + oh * g.w_out + ow] = best;
            ip[p * out_plane + oh * g.w_out + ow] = best_index;
          }
        }
      }
    });
  });
}

// grad, indices [..., h_out, w_out] -> x_grad [..., H, W]
void max_pool2d_backward(const Tensor& grad, const Tensor& indices, const Tensor& x_grad) {
  const Planes in = planes_of(x_grad), out = planes_of(grad);
  CTXPOOL_DISPATCH_FLOAT(grad.dtype(), "max_pool2d backward", [&] {
    using T = scalar_t;
    const T* gp = grad.data_ptr<T>();
    const int64_t* ip = indices.data_ptr<int64_t>();
    T* xp = x_grad.data_ptr<T>();
    parallel_for(0, in.count, plane_grain(in.h * in.w), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* plane = xp + p * in.h * in.w;
        std::fill(plane, plane + in.h * in.w, T(0));
        for (int64_t o = p * out.h * out.w; o < (p + 1) * out.h * out.w; ++o)
          if (ip[o] >= 0) plane[ip[o]] += gp[o];  // -1: a window with no input position (never made by the op)
      }
    });
  });
}

// One averaging window: input rows [h0, h1) and columns [w0, w1), and the divisor of its sum.
struct Window {
  int64_t h0, h1, w0, w1;
  double divisor;
};

// PyTorch's avg_pool2d window: its size is counted within the padded input (so a ceil_mode window
// that hangs past the padding counts less), then clipped to the input.
Window avg_window(const Conv2dGeometry& g, bool count_include_pad, int64_t in_h, int64_t in_w, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  const int64_t h1 = std::min(h0 + g.kh, in_h + g.pad_h), w1 = std::min(w0 + g.kw, in_w + g.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  Window win{std::max<int64_t>(h0, 0), std::min(h1, in_h), std::max<int64_t>(w0, 0), std::min(w1, in_w), 0.0};
  win.divisor = static_cast<double>(count_include_pad ? padded_size : (win.h1 - win.h0) * (win.w1 - win.w0));
  return win;
}

// PyTorch's adaptive window: [floor(i * in / out), ceil((i + 1) * in / out)).
Window adaptive_window(int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, int64_t oh, int64_t ow) {
  Window win{oh * in_h / out_h, ((oh + 1) * in_h + out_h - 1) / out_h, ow * in_w / out_w,
             ((ow + 1) * in_w + out_w - 1) / out_w, 0.0};
  win.divisor = static_cast<double>((win.h1 - win.h0) * (win.w1 - win.w0));
  return win;
}

// x [..., H, W] -> out [..., OH, OW]: out = sum over window_of(oh, ow) / its divisor (0 for an empty window).
template <typename WindowOf>
void average_forward(const Tensor& x, const Tensor& out, const char* op, const WindowOf& window_of) {
  const Planes in = planes_of(x), o = planes_of(out);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), op, [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* op_data = out.data_ptr<T>();
    parallel_for(0, in.count, plane_grain(in.h * in.w), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* plane = xp + p * in.h * in.w;
        T* out_plane = op_data + p * o.h * o.w;
        for (int64_t oh = 0; oh < o.h; ++oh) {
          for (int64_t ow = 0; ow < o.w; ++ow) {
            const Window win = window_of(oh, ow);
            double total = 0;  // accumulated in double, so float32 sums of large windows stay accurate
            for (int64_t h = win.h0; h < win.h1; ++h)
              for (int64_t w = win.w0; w < win.w1; ++w) total += plane[h * in.w + w];
            const bool empty = win.h0 >= win.h1 || win.w0 >= win.w1;
            out_plane[oh * o.w + ow] = empty ? T(0) : static_cast<T>(total / win.divisor);
          }
        }
      }
    });
  });
}

// grad [..., OH, OW] -> x_grad [..., H, W]: zeroed, then grad / divisor added over each window, in
// output order (the adjoint of average_forward).
template <typename WindowOf>
void average_backward(const Tensor& grad, const Tensor& x_grad, const char* op, const WindowOf& window_of) {
  const Planes in = planes_of(x_grad), o = planes_of(grad);
  CTXPOOL_DISPATCH_FLOAT(grad.dtype(), op, [&] {
    using T = scalar_t;
    const T* gp = grad.data_ptr<T>();
    T* xp = x_grad.data_ptr<T>();
    parallel_for(0, in.count, plane_grain(in.h * in.w), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* plane = xp + p * in.h * in.w;
        const T* grad_plane = gp + p * o.h * o.w;
        std::fill(plane, plane + in.h * in.w, T(0));
        for (int64_t oh = 0; oh < o.h; ++oh) {
          for (int64_t ow = 0; ow < o.w; ++ow) {
            const Window win = window_of(oh, ow);
            if (win.h0 >= win.h1 || win.w0 >= win.w1) continue;
            const T share = static_cast<T>(grad_plane[oh * o.w + ow] / win.divisor);
            for (int64_t h = win.h0; h < win.h1; ++h)
              for (int64_t w = win.w0; w < win.w1; ++w) plane[h * in.w + w] += share;
          }
        }
      }
    });
  });
}

// x [..., H, W] -> out [..., h_out, w_out]
void avg_pool2d_forward(const Tensor& x, const Conv2dGeometry& g, bool count_include_pad, const Tensor& out) {
  const Planes in = planes_of(x);
  average_forward(x, out, "avg_pool2d", [&](int64_t oh, int64_t ow) {
    return avg_window(g, count_include_pad, in.h, in.w, oh, ow);
  });
}

// grad [..., h_out, w_out] -> x_grad [..., H, W]
void avg_pool2d_backward(const Tensor& grad, const Conv2dGeometry& g, bool count_include_pad, const Tensor& x_grad) {
  const Planes in = planes_of(x_grad);
  average_backward(grad, x_grad, "avg_pool2d backward", [&](int64_t oh, int64_t ow) {
    return avg_window(g, count_include_pad, in.h, in.w, oh, ow);
  });
}

// x [..., H, W] -> out [..., OH, OW]
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& out) {
  const Planes in = planes_of(x), o = planes_of(out);
  average_forward(x, out, "adaptive_avg_pool2d", [&](int64_t oh, int64_t ow) {
    return adaptive_window(in.h, in.w, o.h, o.w, oh, ow);
  });
}

// grad [..., OH, OW] -> x_grad [..., H, W]
void adaptive_avg_pool2d_backward(const Tensor& grad, const Tensor& x_grad) {
  const Planes in = planes_of(x_grad), o = planes_of(grad);
  average_backward(grad, x_grad, "adaptive_avg_pool2d backward", [&](int64_t oh, int64_t ow) {
    return adaptive_window(in.h, in.w, o.h, o.w, oh, ow);
  });
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

}  // namespace ctxpool::cpu
