// Adaptive context pooling kernels (../shared/PAPER.md; the derivation is in docs/contextpool.md).
//
// Token i pools the tokens j = i - R + c of its window, one slot c = 0..S-1 each, where R is the
// reach min(K, N - 1) and S = R + 1 (causal) or 2R + 1 (bidirectional). With c_i(j) = g_i(j) w_j and
// Z_i = sum_j c_i(j) + eps, the forward saves the normalised coefficients P_i(j) = c_i(j) / Z_i
// [B, N, S], and the backward needs nothing else: nothing is ever [B, N, N], the work is O(B N S d).
//
// Backward, for the upstream gradient gy_i, with m_i = sum_k P_i(k) dP_i(k) = <gy_i, y_i>:
//   dP_i(j) = <gy_i, x_j>,   dc_i(j) = (dP_i(j) - m_i) / Z_i,   so dc_i(j) c_i(j) = (dP_i(j) - m_i) P_i(j)
//   dx_j = sum_i P_i(j) gy_i                   (over the queries i whose window holds j)
//   da_j = dw_j w_j (1 - w_j) with dw_j = sum_i dc_i(j) g_i(j):   da_j = (1 - w_j) sum_i (dP_i(j) - m_i) P_i(j)
//   ds_i = sum_j dc_i(j) c_i(j) (i - j)^2 / s_i^3 = sum_j (dP_i(j) - m_i) P_i(j) (i - j)^2 / s_i^3
//   db_i = ds_i (s_max - s_min) sigma(b_i) (1 - sigma(b_i))
// Written with P, the backward never divides by Z or w: it stays finite when every weight of a
// window underflows (then P = 0, and so are the gradients).
// Pass A runs over query rows (dP, m, ds, and (dP - m) P kept per slot), pass B over key rows (dx,
// da), so no two threads write the same output and results do not depend on the thread count.
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/context_pool_common.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_context_pool_kernels at the end).
namespace {

using ops::ContextPoolMode;
using context_pool_detail::dot;
using context_pool_detail::row_grain;
using context_pool_detail::sigmoid;

// The window geometry shared by both passes.
struct Band {
  int64_t n, reach, slots;
  Band(int64_t n_, const ops::ContextPool1dOptions& o)
      : n(n_), reach(context_pool1d_reach(n_, o)), slots(context_pool1d_slots(n_, o)) {}
  int64_t key(int64_t i, int64_t c) const { return i - reach + c; }  // the token in slot c of row i
  bool inside(int64_t j) const { return j >= 0 && j < n; }
};

// Per-token weights w [B*N] and support sizes s [B*N] in double, from a and b.
void weights_and_supports(const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                          std::vector<double>& w, std::vector<double>& s) {
  const int64_t count = a.numel();
  w.assign(count, 1.0);
  s.assign(count, *o.s_fixed);
  CTXPOOL_DISPATCH_FLOAT(a.dtype(), "context_pool1d", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    const scalar_t* bp = b.data_ptr<scalar_t>();
    for (int64_t t = 0; t < count; ++t) {
      if (o.mode != ContextPoolMode::Uniform) w[t] = sigmoid(ap[t]);
      if (o.mode == ContextPoolMode::Full) s[t] = o.s_min + (*o.s_max - o.s_min) * sigmoid(bp[t]);
    }
  });
}

// x [B, N, d], a, b [B, N] -> y [B, N, d], coef [B, N, S]
void context_pool1d_forward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                            const Tensor& y, const Tensor& coef) {
  const int64_t batch = x.sizes()[0], n = x.sizes()[1], d = x.sizes()[2];
  const Band band(n, o);
  std::vector<double> w, s;
  weights_and_supports(a, b, o, w, s);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool1d", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* yp = y.data_ptr<T>();
    T* cp = coef.data_ptr<T>();
    parallel_for(0, batch * n, row_grain(band.slots * d), [&](int64_t r0, int64_t r1) {
      std::vector<double> c(band.slots);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t bi = r / n, i = r % n;
        const double inv_two_s2 = 1.0 / (2.0 * s[r] * s[r]);
        double z = o.eps;
        for (int64_t slot = 0; slot < band.slots; ++slot) {
          const int64_t j = band.key(i, slot);
          const double dist = static_cast<double>(i - j);
          c[slot] = band.inside(j) ? std::exp(-dist * dist * inv_two_s2) * w[bi * n + j] : 0.0;
          z += c[slot];
        }
        // p = c / z, with p = 0 exactly where c = 0 (outside the sequence; an underflowed weight, so also
        // y_i = 0 when eps = 0 and every weight underflowed: z = 0). Not c * (1 / z): for a subnormal z
        // (eps 0, tiny weights) 1 / z is inf, while every c / z is in [0, 1]. A NaN weight stays NaN.
        T* yr = yp + r * d;
        T* cr = cp + r * band.slots;
        for (int64_t e = 0; e < d; ++e) yr[e] = 0;
        for (int64_t slot = 0; slot < band.slots; ++slot) {
          cr[slot] = static_cast<T>(c[slot] == 0.0 ? 0.0 : c[slot] / z);
          const int64_t j = band.key(i, slot);
          if (!band.inside(j) || cr[slot] == T(0)) continue;
          const T p = cr[slot];
          const T* xr = xp + (bi * n + j) * d;
          for (int64_t e = 0; e < d; ++e) yr[e] += p * xr[e];
        }
      }
    });
  });
}

// gy [B, N, d] -> gx [B, N, d], ga, gb [B, N] (each optional)
void context_pool1d_backward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                             const Tensor& coef, const Tensor& gy, const Tensor& gx, const Tensor& ga,
                             const Tensor& gb) {
  const int64_t batch = x.sizes()[0], n = x.sizes()[1], d = x.sizes()[2];
  const Band band(n, o);
  const bool need_a = o.mode != ContextPoolMode::Uniform && ga.defined();
  const bool need_b = o.mode == ContextPoolMode::Full && gb.defined();
  std::vector<double> w, s;
  weights_and_supports(a, b, o, w, s);
  // Pass A's per-slot (dP_i(j) - m_i) P_i(j) (summed into da_j by pass B) and ds_i.
  std::vector<double> dcc(need_a ? batch * n * band.slots : 0), ds(batch * n, 0.0);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool1d backward", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    const T* cp = coef.data_ptr<T>();
    const T* gp = gy.data_ptr<T>();
    if (need_a || need_b) {
      // Pass A: over query rows i.
      parallel_for(0, batch * n, row_grain(band.slots * d), [&](int64_t r0, int64_t r1) {
        std::vector<double> dp(band.slots);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t bi = r / n, i = r % n;
          const T* cr = cp + r * band.slots;
          const T* gr = gp + r * d;
          double m = 0;
          for (int64_t slot = 0; slot < band.slots; ++slot) {
            const int64_t j = band.key(i, slot);
            const bool used = band.inside(j) && cr[slot] != T(0);
            dp[slot] = used ? static_cast<double>(dot(gr, xp + (bi * n + j) * d, d)) : 0.0;
            m += static_cast<double>(cr[slot]) * dp[slot];
          }
          double ds_acc = 0;
          for (int64_t slot = 0; slot < band.slots; ++slot) {
            const double term = (dp[slot] - m) * static_cast<double>(cr[slot]);  // dc_i(j) c_i(j); 0 outside
            if (need_a) dcc[r * band.slots + slot] = term;
            const double dist = static_cast<double>(band.reach - slot);  // i - j
            ds_acc += term * dist * dist;
          }
          ds[r] = ds_acc / (s[r] * s[r] * s[r]);
        }
      });
    }
    // Pass B: over key rows j (the queries i = j + R - c whose slot c holds j).
    T* gxp = gx.defined() ? gx.data_ptr<T>() : nullptr;
    T* gap = ga.defined() ? ga.data_ptr<T>() : nullptr;
    T* gbp = gb.defined() ? gb.data_ptr<T>() : nullptr;
    const T* bp = b.data_ptr<T>();
    parallel_for(0, batch * n, row_grain(band.slots * d), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t bi = r / n, j = r % n;
        T* gxr = gxp ? gxp + r * d : nullptr;
        if (gxr)
          for (int64_t e = 0; e < d; ++e) gxr[e] = 0;
        double da = 0;
        for (int64_t slot = 0; slot < band.slots; ++slot) {
          const int64_t i = j + band.reach - slot;
          if (!band.inside(i)) continue;
          const int64_t q = bi * n + i;
          if (need_a) da += dcc[q * band.slots + slot];
          const T p = cp[q * band.slots + slot];
          if (!gxr || p == T(0)) continue;
          const T* gr = gp + q * d;
          for (int64_t e = 0; e < d; ++e) gxr[e] += p * gr[e];
        }
        if (gap) gap[r] = static_cast<T>(need_a ? da * (1.0 - w[r]) : 0.0);
        if (gbp) {
          const double sb = need_b ? sigmoid(static_cast<double>(bp[r])) : 0.0;
          gbp[r] = static_cast<T>(need_b ? ds[r] * (*o.s_max - o.s_min) * sb * (1.0 - sb) : 0.0);
        }
      }
    });
  });
}

}  // namespace

void add_context_pool_kernels(Kernels& k) {
  k.context_pool1d_forward = context_pool1d_forward;
  k.context_pool1d_backward = context_pool1d_backward;
}

}  // namespace ctxpool::cpu
