// Adaptive context pooling on CUDA: the same math and slot layout as ops/cpu/context_pool.cpp (read
// it first; docs/contextpool.md derives the backward). Row i of coef [B, N, S] holds P_i(j) for the
// keys j = i - R + c, c = 0..S-1 (R the reach, S the slots; 0 outside the sequence).
//
// One warp per row: lanes split the feature dim d, dot products reduce with a butterfly of shuffles
// (every lane ends with the same bits). Weights, supports, Gaussians and the per-row sums are in
// double, products and feature sums in the tensor's dtype, as on the CPU.
//
// The backward is deterministic, with one scratch value per query row, m_i = sum_k P_i(k) dP_i(k)
// (in double; computed once, since ga and gb both need it):
//   gx   one warp per key row j, gathering P_i(j) gy_i over the queries i that see j;
//   m    one warp per query row;
//   gb   one warp per query row i (ds_i from m_i), like the CPU's pass A;
//   ga   one warp per key row j: da_j sums (dP_i(j) - m_i) P_i(j) over the queries that see j.
// The CPU keeps per-slot terms in a buffer; here dP is recomputed where needed (a warp dot product).
// Every output element is written by one warp, and every sum runs in the CPU's order (slots
// ascending, i.e. queries i descending): no atomics, the same bits on every run.
#include <cstdint>

#include "core/dtype.h"
#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/warp.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_context_pool_kernels at the end).
namespace {

using ops::ContextPoolMode;

using namespace warp;

// The options as the kernels need them (by value; reach and slots computed on the host).
struct PoolGeom {
  int64_t n, d, reach, slots;
  bool learn_w, learn_s;  // w = sigmoid(a) unless uniform; s from b only in full mode
  double s_min, s_range, s_fixed, eps;
};

PoolGeom make_geom(int64_t n, int64_t d, const ops::ContextPool1dOptions& o) {
  PoolGeom g;
  g.n = n;
  g.d = d;
  g.reach = context_pool1d_reach(n, o);
  g.slots = context_pool1d_slots(n, o);
  g.learn_w = o.mode != ContextPoolMode::Uniform;
  g.learn_s = o.mode == ContextPoolMode::Full;
  g.s_min = o.s_min;
  g.s_range = *o.s_max - o.s_min;
  g.s_fixed = *o.s_fixed;
  g.eps = o.eps;
  return g;
}

template <typename T>
__device__ double weight_of(const T* a, int64_t r, const PoolGeom& g) {
  return g.learn_w ? sigmoid(static_cast<double>(a[r])) : 1.0;
}

template <typename T>
__device__ double support_of(const T* b, int64_t r, const PoolGeom& g) {
  return g.learn_s ? g.s_min + g.s_range * sigmoid(static_cast<double>(b[r])) : g.s_fixed;
}

// m_i = sum_k P_i(k) dP_i(k) with dP_i(k) = <gy_i, x_k> (the whole warp calls it; row r = b n + i).
template <typename T>
__device__ double row_m(const T* x, const T* coef, const T* gy, int64_t r, const PoolGeom& g, int lane) {
  const int64_t bn = r - r % g.n, i = r % g.n;
  const T* cr = coef + r * g.slots;
  double m = 0;
  for (int64_t slot = 0; slot < g.slots; ++slot) {
    const int64_t j = i - g.reach + slot;
    const T p = cr[slot];
    if (j < 0 || j >= g.n || p == T(0)) continue;  // dP taken as 0 there, like the CPU
    m += static_cast<double>(p) * static_cast<double>(warp_dot(gy + r * g.d, x + (bn + j) * g.d, g.d, lane));
  }
  return m;
}

// Forward, one warp per query row r = b n + i: c_i(j) = g_i(j) w_j and Z_i (lanes split the slots),
// coef = c / Z, then y_i = sum_slots P_i(j) x_j (lanes split the features).
template <typename T>
__global__ void forward_kernel(const T* x, const T* a, const T* b, T* y, T* coef, int64_t rows, PoolGeom g) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bn = r - r % g.n, i = r % g.n;
    const double s = support_of(b, r, g);
    const double inv_two_s2 = 1.0 / (2.0 * s * s);
    // c for a slot; computed twice (for Z, then for P) rather than stored, S being unbounded.
    auto c_of = [&](int64_t slot) {
      const int64_t j = i - g.reach + slot;
      if (j < 0 || j >= g.n) return 0.0;
      const double dist = static_cast<double>(i - j);
      return exp(-dist * dist * inv_two_s2) * weight_of(a, bn + j, g);
    };
    double part = 0;
    for (int64_t slot = lane; slot < g.slots; slot += kWarpSize) part += c_of(slot);
    const double z = warp_sum(part) + g.eps;
    // p = c / z, exactly 0 where c = 0 (as on the CPU: ops/cpu/context_pool.cpp says why not c * (1 / z)).
    T* cr = coef + r * g.slots;
    for (int64_t slot = lane; slot < g.slots; slot += kWarpSize) {
      const double c = c_of(slot);
      cr[slot] = static_cast<T>(c == 0.0 ? 0.0 : c / z);
    }
    __syncwarp();  // the row of P is read back by every lane
    for (int64_t e = lane; e < g.d; e += kWarpSize) {
      T acc = 0;
      for (int64_t slot = 0; slot < g.slots; ++slot) {
        const int64_t j = i - g.reach + slot;
        const T p = cr[slot];
        if (j < 0 || j >= g.n || p == T(0)) continue;
        acc += p * x[(bn + j) * g.d + e];
      }
      y[r * g.d + e] = acc;
    }
  }
}

// gx, one warp per key row r = b n + j: gx_j = sum P_i(j) gy_i over the queries i = j + R - slot.
template <typename T>
__global__ void backward_gx_kernel(const T* coef, const T* gy, T* gx, int64_t rows, PoolGeom g) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bn = r - r % g.n, j = r % g.n;
    for (int64_t e = lane; e < g.d; e += kWarpSize) {
      T acc = 0;
      for (int64_t slot = 0; slot < g.slots; ++slot) {
        const int64_t i = j + g.reach - slot;
        if (i < 0 || i >= g.n) continue;
        const T p = coef[(bn + i) * g.slots + slot];
        if (p == T(0)) continue;
        acc += p * gy[(bn + i) * g.d + e];
      }
      gx[r * g.d + e] = acc;
    }
  }
}

// gb, one warp per query row r = b n + i (the CPU's pass A):
// ds_i = sum_slots (dP_i(j) - m_i) P_i(j) (i - j)^2 / s_i^3,  db_i = ds_i (s_max - s_min) sigma'(b_i).
template <typename T>
__global__ void backward_gb_kernel(const T* x, const T* b, const T* coef, const T* gy, const double* m_rows, T* gb,
                                   int64_t rows, PoolGeom g) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bn = r - r % g.n, i = r % g.n;
    const T* cr = coef + r * g.slots;
    const double m = m_rows[r];
    double ds_acc = 0;
    for (int64_t slot = 0; slot < g.slots; ++slot) {
      const int64_t j = i - g.reach + slot;
      const T p = cr[slot];
      const bool used = j >= 0 && j < g.n && p != T(0);
      // dP again, the same bits as in row_m (no buffer for it)
      const double dp = used ? static_cast<double>(warp_dot(gy + r * g.d, x + (bn + j) * g.d, g.d, lane)) : 0.0;
      const double term = (dp - m) * static_cast<double>(p);  // dc_i(j) c_i(j); 0 outside
      const double dist = static_cast<double>(g.reach - slot);  // i - j
      ds_acc += term * dist * dist;
    }
    const double s = support_of(b, r, g);
    const double ds = ds_acc / (s * s * s);
    const double sb = sigmoid(static_cast<double>(b[r]));
    if (lane == 0) gb[r] = static_cast<T>(ds * g.s_range * sb * (1.0 - sb));
  }
}

// m, one warp per query row r = b n + i.
template <typename T>
__global__ void backward_m_kernel(const T* x, const T* coef, const T* gy, double* m_rows, int64_t rows, PoolGeom g) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const double m = row_m(x, coef, gy, r, g, lane);
    if (lane == 0) m_rows[r] = m;
  }
}

// ga, one warp per key row r = b n + j: da_j = (1 - w_j) sum_i (dP_i(j) - m_i) P_i(j) over the
// queries i = j + R - slot that see j, slots ascending (the CPU's order; a term with P = 0 is still
// added, so a NaN m_i propagates as on the CPU).
template <typename T>
__global__ void backward_ga_kernel(const T* x, const T* a, const T* coef, const T* gy, const double* m_rows, T* ga,
                                   int64_t rows, PoolGeom g) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bn = r - r % g.n, j = r % g.n;
    const int64_t i_hi = j + g.reach < g.n - 1 ? j + g.reach : g.n - 1;
    const int64_t i_lo = j + g.reach - (g.slots - 1) > 0 ? j + g.reach - (g.slots - 1) : 0;
    double acc = 0;
    for (int64_t i = i_hi; i >= i_lo; --i) {  // slot = j + R - i ascending
      const int64_t q = bn + i;
      const T p = coef[q * g.slots + (j + g.reach - i)];
      const double dp = p != T(0) ? static_cast<double>(warp_dot(gy + q * g.d, x + r * g.d, g.d, lane)) : 0.0;
      acc += (dp - m_rows[q]) * static_cast<double>(p);
    }
    if (lane == 0) ga[r] = static_cast<T>(acc * (1.0 - weight_of(a, r, g)));
  }
}

// Fills t (contiguous [count]) with zeros: a gradient the mode does not learn.
template <typename T>
__global__ void zero_kernel(T* t, int64_t count) {
  CTXPOOL_CUDA_LOOP(r, count) t[r] = T(0);
}

// x [B, N, d], a, b [B, N] -> y [B, N, d], coef [B, N, S]
void context_pool1d_forward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                            const Tensor& y, const Tensor& coef) {
  const int64_t batch = x.sizes()[0], n = x.sizes()[1], d = x.sizes()[2];
  const int64_t rows = batch * n;
  if (rows == 0) return;  // d = 0 still writes coef
  set_device(x.device().index);
  const PoolGeom g = make_geom(n, d, o);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool1d", [&] {
    using T = scalar_t;
    forward_kernel<T><<<warp_blocks(rows), kThreads, 0, current_stream()>>>(
        data<T>(x), data<T>(a), data<T>(b), data<T>(y), data<T>(coef), rows, g);
    check_launch("context_pool1d forward kernel");
  });
}

// gy [B, N, d] -> gx [B, N, d], ga, gb [B, N] (each optional)
void context_pool1d_backward(const Tensor& x, const Tensor& a, const Tensor& b, const ops::ContextPool1dOptions& o,
                             const Tensor& coef, const Tensor& gy, const Tensor& gx, const Tensor& ga,
                             const Tensor& gb) {
  const int64_t batch = x.sizes()[0], n = x.sizes()[1], d = x.sizes()[2];
  const int64_t rows = batch * n;
  if (rows == 0) return;
  set_device(x.device().index);
  const PoolGeom g = make_geom(n, d, o);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "context_pool1d backward", [&] {
    using T = scalar_t;
    const cudaStream_t stream = current_stream();
    if (gx.defined()) {
      backward_gx_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(data<T>(coef), data<T>(gy), data<T>(gx),
                                                                       rows, g);
      check_launch("context_pool1d backward gx kernel");
    }
    const bool need_ga = ga.defined() && g.learn_w, need_gb = gb.defined() && g.learn_s;
    // (scratch from the caching allocator, freed in stream order after the kernels that read it)
    const Tensor m = need_ga || need_gb ? empty({rows}, TensorOptions(kFloat64).device(x.device())) : Tensor();
    if (m.defined()) {
      backward_m_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(data<T>(x), data<T>(coef), data<T>(gy),
                                                                      data<double>(m), rows, g);
      check_launch("context_pool1d backward m kernel");
    }
    if (need_ga) {
      backward_ga_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(
          data<T>(x), data<T>(a), data<T>(coef), data<T>(gy), data<double>(m), data<T>(ga), rows, g);
      check_launch("context_pool1d backward ga kernel");
    } else if (ga.defined()) {  // uniform: w = 1 is not learned
      zero_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(data<T>(ga), rows);
      check_launch("context_pool1d backward zero kernel");
    }
    if (need_gb) {
      backward_gb_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(
          data<T>(x), data<T>(b), data<T>(coef), data<T>(gy), data<double>(m), data<T>(gb), rows, g);
      check_launch("context_pool1d backward gb kernel");
    } else if (gb.defined()) {  // weights_only, uniform: s = s_fixed is not learned
      zero_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(data<T>(gb), rows);
      check_launch("context_pool1d backward zero kernel");
    }
  });
}

}  // namespace

void add_context_pool_kernels(Kernels& k) {
  k.context_pool1d_forward = context_pool1d_forward;
  k.context_pool1d_backward = context_pool1d_backward;
}

}  // namespace ctxpool::cuda
