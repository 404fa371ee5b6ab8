// Local (sliding-window) causal attention on CUDA: the same math and layout as
// ops/cpu/local_attention.cpp (read it first). Query i sees the W keys j = i - W + 1 + c,
// c in [0, W); probs [BH, T, W] holds 0 in the slots before the sequence start.
//
// One warp per row: lanes split the head dim, dot products reduce with a butterfly of shuffles
// (every lane ends with the same bits). Products and feature sums are in the tensor's dtype, the
// softmax normaliser and the backward's row sums in double, as on the CPU.
//
// The backward is deterministic, with one scratch row of rowdot_i = sum_c P[i,c] dP[i,c] per query
// (computed once: dq and dk both need it):
//   rowdot  one warp per query row;
//   dq      one warp per query row: dS[i,c] from rowdot_i, then dq_i = sum_c dS[i,c] k_j;
//   dv      one warp per key row j, gathering P[i,c] g_i over the queries i = j .. j + W - 1;
//   dk      one warp per key row j: dk_j = sum_i dS[i,c] q_i over the same queries.
// The CPU keeps dS in a buffer; here dS is recomputed where needed (dP is one warp dot product).
// Every output element is written by one warp, and every sum runs in the CPU's order (slots
// ascending for query rows, queries ascending for key rows): no atomics, the same bits every run.
#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/warp.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_local_attention_kernels at the end).
namespace {

using namespace warp;

// The sizes the kernels need (by value): sequence length, window (already min(window, T)), head dims.
struct Band {
  int64_t t, w, d, dv;
};

__device__ float exp_of(float v) { return expf(v); }
__device__ double exp_of(double v) { return exp(v); }

// The first slot of query i whose key j = i - W + 1 + c is in the sequence.
__device__ int64_t first_slot(int64_t i, int64_t w) { return w - 1 - i > 0 ? w - 1 - i : 0; }

// rowdot_i = sum_c P[i,c] dP[i,c] with dP[i,c] = g_i . v_j, summed in double like the CPU's sum_of
// (the whole warp calls it; row r = b T + i).
template <typename T>
__device__ T row_dot(const T* v, const T* probs, const T* g, int64_t r, const Band& s, int lane) {
  const int64_t bt = r - r % s.t, i = r % s.t;
  double acc = 0;
  for (int64_t c = first_slot(i, s.w); c < s.w; ++c) {
    const T dp = warp_dot(g + r * s.dv, v + (bt + i - s.w + 1 + c) * s.dv, s.dv, lane);
    acc += static_cast<double>(probs[r * s.w + c] * dp);
  }
  return static_cast<T>(acc);
}


// Forward, one warp per query row r = b T + i: scores into the probs row, softmax over the valid
// slots with the row max subtracted, then out_i = sum_c P[i,c] v_j (lanes split Dv).
template <typename T>
__global__ void forward_kernel(const T* q, const T* k, const T* v, T* probs, T* out, int64_t rows, Band s,
                               T scale) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bt = r - r % s.t, i = r % s.t, first = first_slot(i, s.w);
    T* prow = probs + r * s.w;
    T mx = -static_cast<T>(INFINITY);
    for (int64_t c = first; c < s.w; ++c) {
      const T score = scale * warp_dot(q + r * s.d, k + (bt + i - s.w + 1 + c) * s.d, s.d, lane);
      if (c % kWarpSize == lane) prow[c] = score;  // the lane that exponentiates it below
      mx = mx < score ? score : mx;
    }
    __syncwarp();
    double part = 0;
    for (int64_t c = lane; c < s.w; c += kWarpSize) {
      if (c < first) continue;
      prow[c] = exp_of(prow[c] - mx);
      part += static_cast<double>(prow[c]);
    }
    const T inv = static_cast<T>(1.0 / warp_sum(part));  // >= 1: the max slot gives exp(0)
    for (int64_t c = lane; c < s.w; c += kWarpSize) prow[c] = c < first ? T(0) : prow[c] * inv;
    __syncwarp();  // the row of P is read back by every lane
    for (int64_t e = lane; e < s.dv; e += kWarpSize) {
      T acc = 0;
      for (int64_t c = first; c < s.w; ++c) acc += prow[c] * v[(bt + i - s.w + 1 + c) * s.dv + e];
      out[r * s.dv + e] = acc;
    }
  }
}

// rowdot, one warp per query row r = b T + i.
template <typename T>
__global__ void backward_rowdot_kernel(const T* v, const T* probs, const T* g, T* rowdot, int64_t rows, Band s) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const T rd = row_dot(v, probs, g, r, s, lane);
    if (lane == 0) rowdot[r] = rd;
  }
}

// dq, one warp per query row r = b T + i:
// dS[i,c] = scale P[i,c] (dP[i,c] - rowdot_i),  dq_i = sum_c dS[i,c] k_j.
template <typename T>
__global__ void backward_dq_kernel(const T* k, const T* v, const T* probs, const T* g, const T* rowdot, T* dq,
                                   int64_t rows, Band s, T scale) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bt = r - r % s.t, i = r % s.t;
    const T rd = rowdot[r];
    T* dq_row = dq + r * s.d;
    for (int64_t e = lane; e < s.d; e += kWarpSize) dq_row[e] = 0;
    for (int64_t c = first_slot(i, s.w); c < s.w; ++c) {
      const int64_t j = bt + i - s.w + 1 + c;
      const T dp = warp_dot(g + r * s.dv, v + j * s.dv, s.dv, lane);  // again, the same bits as in row_dot
      const T ds = scale * probs[r * s.w + c] * (dp - rd);
      for (int64_t e = lane; e < s.d; e += kWarpSize) dq_row[e] += ds * k[j * s.d + e];
    }
  }
}

// dv, one warp per key row r = b T + j: dv_j = sum_{i = j .. j+W-1} P[i,c] g_i, c = j - i + W - 1.
template <typename T>
__global__ void backward_dv_kernel(const T* probs, const T* g, T* dv, int64_t rows, Band s) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bt = r - r % s.t, j = r % s.t;
    const int64_t last = j + s.w - 1 < s.t - 1 ? j + s.w - 1 : s.t - 1;
    for (int64_t e = lane; e < s.dv; e += kWarpSize) {
      T acc = 0;
      for (int64_t i = j; i <= last; ++i) acc += probs[(bt + i) * s.w + (j - i + s.w - 1)] * g[(bt + i) * s.dv + e];
      dv[r * s.dv + e] = acc;
    }
  }
}

// dk, one warp per key row r = b T + j: dk_j = sum_{i = j .. j+W-1} dS[i,c] q_i, c = j - i + W - 1,
// queries ascending (the CPU's order).
template <typename T>
__global__ void backward_dk_kernel(const T* q, const T* v, const T* probs, const T* g, const T* rowdot, T* dk,
                                   int64_t rows, Band s, T scale) {
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t r = first_warp(); r < rows; r += warp_count()) {
    const int64_t bt = r - r % s.t, j = r % s.t;
    const int64_t last = j + s.w - 1 < s.t - 1 ? j + s.w - 1 : s.t - 1;
    T* dk_row = dk + r * s.d;
    for (int64_t e = lane; e < s.d; e += kWarpSize) dk_row[e] = 0;
    for (int64_t i = j; i <= last; ++i) {
      const int64_t row = bt + i;
      const T dp = warp_dot(g + row * s.dv, v + r * s.dv, s.dv, lane);  // the same bits as in row_dot
      const T ds = scale * probs[row * s.w + (j - i + s.w - 1)] * (dp - rowdot[row]);
      for (int64_t e = lane; e < s.d; e += kWarpSize) dk_row[e] += ds * q[row * s.d + e];
    }
  }
}

// q, k [BH, T, D], v [BH, T, Dv] -> probs [BH, T, W], out [BH, T, Dv]
void local_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale,
                             const Tensor& probs, const Tensor& out) {
  const int64_t bh = q.sizes()[0], t = q.sizes()[1];
  const int64_t rows = bh * t;
  if (rows == 0) return;
  set_device(q.device().index);
  const Band s{t, window < t ? window : t, q.sizes()[2], v.sizes()[2]};  // a longer window sees all of it
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "local_attention", [&] {
    using T = scalar_t;
    forward_kernel<T><<<warp_blocks(rows), kThreads, 0, current_stream()>>>(
        data<T>(q), data<T>(k), data<T>(v), data<T>(probs), data<T>(out), rows, s, static_cast<T>(scale));
    check_launch("local_attention forward kernel");
  });
}

// q, k [BH, T, D], v [BH, T, Dv], probs [BH, T, W], g [BH, T, Dv]
//   -> dq [BH, T, D], dk [BH, T, D], dv [BH, T, Dv] (each optional)
void local_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                              const Tensor& g, int64_t window, double scale, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv) {
  const int64_t bh = q.sizes()[0], t = q.sizes()[1];
  const int64_t rows = bh * t;
  if (rows == 0) return;
  set_device(q.device().index);
  const Band s{t, window < t ? window : t, q.sizes()[2], v.sizes()[2]};
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "local_attention backward", [&] {
    using T = scalar_t;
    const cudaStream_t stream = current_stream();
    const T sc = static_cast<T>(scale);
    // (scratch from the caching allocator, freed in stream order after the kernels that read it)
    const Tensor rowdot = dq.defined() || dk.defined() ? empty({rows}, TensorOptions(q.dtype()).device(q.device()))
                                                       : Tensor();
    if (rowdot.defined()) {
      backward_rowdot_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(data<T>(v), data<T>(probs), data<T>(g),
                                                                           data<T>(rowdot), rows, s);
      check_launch("local_attention backward rowdot kernel");
    }
    if (dq.defined()) {
      backward_dq_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(
          data<T>(k), data<T>(v), data<T>(probs), data<T>(g), data<T>(rowdot), data<T>(dq), rows, s, sc);
      check_launch("local_attention backward dq kernel");
    }
    if (dk.defined()) {
      backward_dk_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(
          data<T>(q), data<T>(v), data<T>(probs), data<T>(g), data<T>(rowdot), data<T>(dk), rows, s, sc);
      check_launch("local_attention backward dk kernel");
    }
    if (dv.defined()) {
      backward_dv_kernel<T><<<warp_blocks(rows), kThreads, 0, stream>>>(data<T>(probs), data<T>(g), data<T>(dv),
                                                                       rows, s);
      check_launch("local_attention backward dv kernel");
    }
  });
}

}  // namespace

void add_local_attention_kernels(Kernels& k) {
  k.local_attention_forward = local_attention_forward;
  k.local_attention_backward = local_attention_backward;
}

}  // namespace ctxpool::cuda
