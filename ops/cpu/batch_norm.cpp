// Batch normalisation's per-channel passes on the CPU (ops/batch_norm.cpp composes them). x is viewed
// as [B, C, S]: channel c is the B rows x[b, c, :] of S contiguous values. Channels run in parallel;
// each channel's sums run over b, then s, in one thread, in double: the same bits for any thread
// count.
#include <algorithm>

#include "core/parallel.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_batch_norm_kernels at the end).
namespace {

struct Layout {
  int64_t b, c, s;
};
Layout layout_of(const Tensor& x) { return {x.sizes()[0], x.sizes()[1], x.numel() / (x.sizes()[0] * x.sizes()[1])}; }

template <typename T>
const T* cdata(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr; }
template <typename T>
T* wdata(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

// Channels per parallel chunk: enough work per chunk that tiny channels do not go one by one.
int64_t channel_grain(const Layout& l) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, l.b * l.s)); }

template <typename T>
void stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const Layout l = layout_of(x);
  const T* xp = cdata<T>(x);
  T* mp = wdata<T>(mean);
  T* vp = wdata<T>(var);
  const double n = static_cast<double>(l.b * l.s);
  parallel_for(0, l.c, channel_grain(l), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sum = 0;
      for (int64_t b = 0; b < l.b; ++b) {
        const T* row = xp + (b * l.c + c) * l.s;
        for (int64_t s = 0; s < l.s; ++s) sum += static_cast<double>(row[s]);
      }
      const double m = sum / n;
      double sq = 0;
      for (int64_t b = 0; b < l.b; ++b) {
        const T* row = xp + (b * l.c + c) * l.s;
        for (int64_t s = 0; s < l.s; ++s) {
          const double d = static_cast<double>(row[s]) - m;
          sq += d * d;
        }
      }
      mp[c] = static_cast<T>(m);
      vp[c] = static_cast<T>(sq / n);
    }
  });
}

template <typename T>
void grad_sums(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& sum_g, const Tensor& sum_gc) {
  const Layout l = layout_of(x);
  const T* xp = cdata<T>(x);
  const T* gp = cdata<T>(g);
  const T* mp = cdata<T>(mean);
  T* sg = wdata<T>(sum_g);
  T* sgc = wdata<T>(sum_gc);
  parallel_for(0, l.c, channel_grain(l), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double m = static_cast<double>(mp[c]);
      double a = 0, b2 = 0;
      for (int64_t b = 0; b < l.b; ++b) {
        const T* xr = xp + (b * l.c + c) * l.s;
        const T* gr = gp + (b * l.c + c) * l.s;
        for (int64_t s = 0; s < l.s; ++s) {
          a += static_cast<double>(gr[s]);
          b2 += static_cast<double>(gr[s]) * (static_cast<double>(xr[s]) - m);
        }
      }
      sg[c] = static_cast<T>(a);
      sgc[c] = static_cast<T>(b2);
    }
  });
}

template <typename T>
void affine(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& add, const Tensor& u,
            const Tensor& u_scale, const Tensor& out) {
  const Layout l = layout_of(x);
  const T* xp = cdata<T>(x);
  const T* up = cdata<T>(u);
  const T* shp = cdata<T>(shift);
  const T* scp = cdata<T>(scale);
  const T* adp = cdata<T>(add);
  const T* usp = cdata<T>(u_scale);
  T* op = wdata<T>(out);
  // One (b, c) row of S values per task: the inner loops are plain vectorisable maps.
  parallel_for(0, l.b * l.c, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, l.s)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t ch = r % l.c;
      const T m = shp[ch], k = scp[ch], a = adp[ch];
      const T* xr = xp + r * l.s;
      T* orow = op + r * l.s;
      if (up == nullptr) {
        for (int64_t s = 0; s < l.s; ++s) orow[s] = k * (xr[s] - m) + a;
      } else {
        const T ku = usp[ch];
        const T* ur = up + r * l.s;
        for (int64_t s = 0; s < l.s; ++s) orow[s] = k * (xr[s] - m) + a + ku * ur[s];
      }
    }
  });
}

void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] { stats<scalar_t>(x, mean, var); });
}
void batch_norm_grad_sums(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& sum_g,
                          const Tensor& sum_gc) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm backward", [&] { grad_sums<scalar_t>(x, g, mean, sum_g, sum_gc); });
}
void channel_affine(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& add, const Tensor& u,
                    const Tensor& u_scale, const Tensor& out) {
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] { affine<scalar_t>(x, shift, scale, add, u, u_scale, out); });
}

}  // namespace

void add_batch_norm_kernels(Kernels& k) {
  k.batch_norm_stats = batch_norm_stats;
  k.batch_norm_grad_sums = batch_norm_grad_sums;
  k.channel_affine = channel_affine;
}

}  // namespace ctxpool::cpu
