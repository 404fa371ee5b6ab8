// 2-D adaptive context pooling kernels: ops/cpu/context_pool.cpp's method on an image grid.
//
// Output position q = (qy, qx) has its centre at c = (stride qy, stride qx) and pools the pixels of
// the window j = c - R + (sy, sx), sy = 0..Sy-1, sx = 0..Sx-1 (R = (Ry, Rx), S = 2R + 1 per axis),
// clipped at the borders. With c_q(j) = g_q(j) w_j and Z_q = sum_j c_q(j) + eps, the forward saves
// P_q(j) = c_q(j) / Z_q [B, Ho, Wo, Sy Sx]; the backward is the 1-D one with the squared distance
// |c - j|^2 = (Ry - sy)^2 + (Rx - sx)^2:
//   dP_q(j) = <gy_q, x_j>,  m_q = sum_j P_q(j) dP_q(j),  t_q(j) = (dP_q(j) - m_q) P_q(j)
//   dx_j = sum_q P_q(j) gy_q,  da_j = (1 - w_j) sum_q t_q(j),  ds_q = sum_j t_q(j) |c - j|^2 / s_q^3
// Pass A runs over output positions (dP, m, t, ds), pass B over input pixels (dx, da: the outputs
// whose window holds the pixel, in a fixed order), so results do not depend on the thread count.
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/context_pool_common.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_context_pool2d_kernels at the end).
namespace {

using ops::ContextPoolMode;
using context_pool_detail::dot;
using context_pool_detail::row_grain;
using context_pool_detail::sigmoid;

// The window geometry of one image size and options.
struct Grid {
  int64_t h, w, ho, wo, stride, ry, rx, sy, sx;
  Grid(int64_t h_, int64_t w_, const ops::ContextPool2dOptions& o)
      : h(h_), w(w_), ho(context_pool2d_out_size(h_, o)), wo(context_pool2d_out_size(w_, o)), stride(o.stride),
        ry(context_pool2d_reach(h_, o)), rx(context_pool2d_reach(w_, o)), sy(2 * ry + 1), sx(2 * rx + 1) {}
  int64_t slots() const { return sy * sx; }
  // The pixel row / column in slot (ky, kx) of output (qy, qx); possibly outside the image.
  int64_t row(int64_t qy, int64_t ky) const { return qy * stride - ry + ky; }
  int64_t col(int64_t qx, int64_t kx) const { return qx * stride - rx + kx; }
  // Squared distance from the centre of slot (ky, kx).
  double dist2(int64_t ky, int64_t kx) const {
    const double dy = static_cast<double>(ry - ky), dx = static_cast<double>(rx - kx);
    return dy * dy + dx * dx;
  }
  // The outputs along one axis whose window holds pixel p: q with |stride q - p| <= r, 0 <= q < n.
  static void outputs_holding(int64_t p, int64_t r, int64_t stride, int64_t n, int64_t& first, int64_t& last) {
    first = std::max<int64_t>(0, (p - r + stride - 1 >= 0 ? (p - r + stride - 1) / stride : 0));
    last = std::min<int64_t>(n - 1, (p + r) / stride);
  }
};

// Weights w [B*H*W] and supports s [B*Ho*Wo] in double, from a and b.
void weights_and_supports(const Tensor& a, const Tensor& b, const ops::ContextPool2dOptions& o,
                          std::vector<double>& w, std::vector<double>& s) {
  w.assign(a.numel(), 1.0);
  s.assign(b.numel(), *o.s_fixed);
  CTXPOOL_DISPATCH_FLOAT(a.dtype(), "context_pool2d", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    if (o.mode != ContextPoolMode::Uniform)
      for (int64_t t = 0; t < a.numel(); ++t) w[t] = sigmoid(ap[t]);
    if (o.mode == ContextPoolMode::Full)
      for (int64_t t = 0; t < b.numel(); ++t) s[t] = o.s_min + (*o.s_max - o.s_min) * sigmoid(bp[t]);
  });
}

// x [B, H, W, d], a [B, H, W], b [B, Ho, Wo] -> y [B, Ho, Wo, d], coef [B, Ho, Wo, S]
void context_pool2d_forward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool2dOptions& o,
                            const Tensor& y, const Tensor& coef) {
  const int64_t batch = x.sizes()[0], d = x.sizes()[3];
  const Grid g(x.sizes()[1], x.sizes()[2], o);
  const int64_t outputs = g.ho * g.wo, slots = g.slots();
  std::vector<double> w, s;
  weights_and_supports(a, b, o, w, s);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool2d", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    T* cp = coef.data_ptr<T>();
    parallel_for(0, batch * outputs, row_grain(slots * d), [&](int64_t r0, int64_t r1) {
      std::vector<double> c(slots);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t bi = r / outputs, qy = (r % outputs) / g.wo, qx = r % g.wo;
        const double inv_two_s2 = 1.0 / (2.0 * s[r] * s[r]);
        double z = o.eps;
        for (int64_t ky = 0; ky < g.sy; ++ky) {
          const int64_t py = g.row(qy, ky);
          for (int64_t kx = 0; kx < g.sx; ++kx) {
            const int64_t px = g.col(qx, kx);
            const bool inside = py >= 0 && py < g.h && px >= 0 && px < g.w;
            const double v = inside ? std::exp(-g.dist2(ky, kx) * inv_two_s2) * w[(bi * g.h + py) * g.w + px] : 0.0;
            c[ky * g.sx + kx] = v;
            z += v;
          }
        }
        // p = c / z, with p = 0 exactly where c = 0 (outside the image, which the readers below rely on;
        // an underflowed weight, so also y_q = 0 when eps = 0 and every weight underflowed: z = 0). Not
        // c * (1 / z): for a subnormal z 1 / z is inf, and 0 * inf made the slots outside the image NaN.
        T* yr = yp + r * d;
        T* cr = cp + r * slots;
        for (int64_t e = 0; e < d; ++e) yr[e] = 0;
        for (int64_t k = 0; k < slots; ++k) {
          cr[k] = static_cast<T>(c[k] == 0.0 ? 0.0 : c[k] / z);
          if (cr[k] == T(0)) continue;  // also every slot outside the image
          const int64_t py = g.row(qy, k / g.sx), px = g.col(qx, k % g.sx);
          const T p = cr[k];
          const T* xr = xp + ((bi * g.h + py) * g.w + px) * d;
          for (int64_t e = 0; e < d; ++e) yr[e] += p * xr[e];
        }
      }
    });
  });
}

// gy [B, Ho, Wo, d] -> gx [B, H, W, d], ga [B, H, W], gb [B, Ho, Wo] (each optional)
void context_pool2d_backward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool2dOptions& o,
                             const Tensor& coef, const Tensor& gy, const Tensor& gx, const Tensor& ga,
                             const Tensor& gb) {
  const int64_t batch = x.sizes()[0], d = x.sizes()[3];
  const Grid g(x.sizes()[1], x.sizes()[2], o);
  const int64_t outputs = g.ho * g.wo, pixels = g.h * g.w, slots = g.slots();
  const bool need_a = o.mode != ContextPoolMode::Uniform && ga.defined();
  const bool need_b = o.mode == ContextPoolMode::Full && gb.defined();
  std::vector<double> w, s;
  weights_and_supports(a, b, o, w, s);
  std::vector<double> t(need_a ? batch * outputs * slots : 0), ds(batch * outputs, 0.0);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool2d backward", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    const T* cp = coef.data_ptr<T>();
    const T* gp = gy.data_ptr<T>();
    if (need_a || need_b) {
      // Pass A: over output positions q.
      parallel_for(0, batch * outputs, row_grain(slots * d), [&](int64_t r0, int64_t r1) {
        std::vector<double> dp(slots);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t bi = r / outputs, qy = (r % outputs) / g.wo, qx = r % g.wo;
          const T* cr = cp + r * slots;
          const T* gr = gp + r * d;
          double m = 0;
          for (int64_t k = 0; k < slots; ++k) {
            dp[k] = 0.0;
            if (cr[k] == T(0)) continue;
            const int64_t py = g.row(qy, k / g.sx), px = g.col(qx, k % g.sx);
            dp[k] = static_cast<double>(dot(gr, xp + ((bi * g.h + py) * g.w + px) * d, d));
            m += static_cast<double>(cr[k]) * dp[k];
          }
          double ds_acc = 0;
          for (int64_t k = 0; k < slots; ++k) {
            const double term = (dp[k] - m) * static_cast<double>(cr[k]);  // 0 outside the image
            if (need_a) t[r * slots + k] = term;
            ds_acc += term * g.dist2(k / g.sx, k % g.sx);
          }
          ds[r] = ds_acc / (s[r] * s[r] * s[r]);
        }
      });
    }
    // Pass B: over input pixels j, visiting the outputs whose window holds j in row-major order.
    T* gxp = gx.defined() ? gx.data_ptr<T>() : nullptr;
    T* gap = ga.defined() ? ga.data_ptr<T>() : nullptr;
    if (gxp || gap) {
      parallel_for(0, batch * pixels, row_grain(slots * d), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t bi = r / pixels, py = (r % pixels) / g.w, px = r % g.w;
          T* gxr = gxp ? gxp + r * d : nullptr;
          if (gxr)
            for (int64_t e = 0; e < d; ++e) gxr[e] = 0;
          int64_t qy0, qy1, qx0, qx1;
          Grid::outputs_holding(py, g.ry, g.stride, g.ho, qy0, qy1);
          Grid::outputs_holding(px, g.rx, g.stride, g.wo, qx0, qx1);
          double da = 0;
          for (int64_t qy = qy0; qy <= qy1; ++qy) {
            for (int64_t qx = qx0; qx <= qx1; ++qx) {
              const int64_t q = (bi * g.ho + qy) * g.wo + qx;
              const int64_t k = (py - qy * g.stride + g.ry) * g.sx + (px - qx * g.stride + g.rx);
              if (need_a) da += t[q * slots + k];
              const T p = cp[q * slots + k];
              if (!gxr || p == T(0)) continue;
              const T* gr = gp + q * d;
              for (int64_t e = 0; e < d; ++e) gxr[e] += p * gr[e];
            }
          }
          if (gap) gap[r] = static_cast<T>(need_a ? da * (1.0 - w[r]) : 0.0);
        }
      });
    }
    if (gb.defined()) {
      T* gbp = gb.data_ptr<T>();
      const T* bp = b.data_ptr<T>();
      for (int64_t r = 0; r < batch * outputs; ++r) {
        const double sb = need_b ? sigmoid(static_cast<double>(bp[r])) : 0.0;
        gbp[r] = static_cast<T>(need_b ? ds[r] * (*o.s_max - o.s_min) * sb * (1.0 - sb) : 0.0);
      }
    }
  });
}

}  // namespace

void add_context_pool2d_kernels(Kernels& k) {
  k.context_pool2d_forward = context_pool2d_forward;
  k.context_pool2d_backward = context_pool2d_backward;
}

}  // namespace ctxpool::cpu
