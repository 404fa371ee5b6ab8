// Fused scaled dot-product attention on CUDA, forward and backward, that never forms the [T, S]
// matrix of scores: memory O(T + S) per head instead of O(T S), as FlashAttention (Dao et al., 2022)
// but written for clarity with the warp-per-row scheme of ops/cuda/warp.cuh, in the tensor's dtype
// (no tensor cores, no reduced precision).
//
// Forward, one warp per query row i (8 rows per block), lanes splitting the head dims: the block walks
// the keys in tiles that it stages in shared memory; for each key the warp forms s = scale q_i . k_j
// and keeps a running softmax (online: the max m so far, the normaliser l, and the unnormalised
// output o rescaled whenever m grows):
//   m' = max(m, s),  l = l e^(m - m') + e^(s - m'),  o = o e^(m - m') + e^(s - m') v_j
// At the end out_i = o / l and lse_i = m + log l, which the backward uses to recompute each
// probability p_ij = e^(s_ij - lse_i) without a second softmax.
//
// Backward (delta_i = dO_i . out_i, dp_ij = dO_i . v_j, ds_ij = p_ij (dp_ij - delta_i)):
//   dq kernel    one warp per query row: delta_i (kept for the next kernel), dq_i = scale sum_j ds_ij k_j
//   dk/dv kernel one warp per key row, walking tiles of queries: dv_j = sum_i p_ij dO_i,
//                dk_j = scale sum_i ds_ij q_i
// Every output element is written by one warp with sums in key (or query) order: no atomics, the
// same bits on every run. Causal masking is top-left aligned like the CPU's: query i sees keys j <= i.
//
// NOT YET RUN ON A GPU: written and compiled without one. tests/cuda/test_parity.cpp compares it with
// the CPU's unfused attention (the attention_* cases) once a GPU is present.
#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/warp.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_flash_attention_kernels at the end).
namespace {

using namespace warp;

constexpr int kPerLane = kFlashMaxHeadDim / kWarpSize;  // head-dim elements per lane (4)
constexpr int kRowsPerBlock = kWarps;                   // query rows (forward, dq) or key rows (dk/dv)

// Rows staged in shared memory at once: 32 (float) or 16 (double), 32 KiB per tile pair either way.
template <typename T>
__host__ __device__ constexpr int tile_rows() { return sizeof(T) == 4 ? 32 : 16; }

// The sizes the kernels need (by value).
struct Dims {
  int64_t bh, t, s, d, dv;
  bool causal;
};

__device__ inline float exp_of(float v) { return expf(v); }
__device__ inline double exp_of(double v) { return exp(v); }
__device__ inline float log_of(float v) { return logf(v); }
__device__ inline double log_of(double v) { return log(v); }

// Lane `lane`'s elements of a row of n <= kFlashMaxHeadDim values: e = lane + 32 c.
template <typename T>
__device__ void load_lane(const T* row, int64_t n, int lane, T (&out)[kPerLane]) {
  for (int c = 0; c < kPerLane; ++c) {
    const int64_t e = lane + c * kWarpSize;
    out[c] = e < n ? row[e] : T(0);
  }
}

// <a, b> where the warp holds a in registers (lane slices) and b is a row (shared or global memory).
template <typename T>
__device__ T lane_dot(const T (&a)[kPerLane], const T* b, int64_t n, int lane) {
  T acc = 0;
  for (int c = 0; c < kPerLane; ++c) {
    const int64_t e = lane + c * kWarpSize;
    if (e < n) acc += a[c] * b[e];
  }
  return warp_sum(acc);
}

// Copies rows [first, first + count) of a [rows, n] matrix into tile [tile_rows, kFlashMaxHeadDim]
// (rows past `rows` become 0); the whole block calls it.
template <typename T>
__device__ void stage_rows(const T* m, int64_t first, int count, int64_t rows, int64_t n, T* tile) {
  for (int idx = threadIdx.x; idx < count * kFlashMaxHeadDim; idx += blockDim.x) {
    const int r = idx / kFlashMaxHeadDim;
    const int64_t e = idx % kFlashMaxHeadDim;
    tile[idx] = (first + r < rows && e < n) ? m[(first + r) * n + e] : T(0);
  }
}

// The last key query i may see (exclusive bound).
__device__ inline int64_t key_end(int64_t i, const Dims& d) { return d.causal ? (i + 1 < d.s ? i + 1 : d.s) : d.s; }

// Forward. Block b covers query rows [i0, i0 + kRowsPerBlock) of head h (grid-stride over (h, tile)).
template <typename T>
__global__ void forward_kernel(const T* q, const T* k, const T* v, T* out, T* lse, Dims d, T scale) {
  constexpr int kTile = tile_rows<T>();
  __shared__ T k_tile[kTile * kFlashMaxHeadDim];
  __shared__ T v_tile[kTile * kFlashMaxHeadDim];
  const int lane = threadIdx.x % kWarpSize, warp_id = threadIdx.x / kWarpSize;
  const int64_t tiles_per_head = (d.t + kRowsPerBlock - 1) / kRowsPerBlock;
  for (int64_t job = blockIdx.x; job < d.bh * tiles_per_head; job += gridDim.x) {
    const int64_t h = job / tiles_per_head, i0 = (job % tiles_per_head) * kRowsPerBlock, i = i0 + warp_id;
    const bool active = i < d.t;
    const T* kh = k + h * d.s * d.d;
    const T* vh = v + h * d.s * d.dv;
    T qr[kPerLane], o[kPerLane];
    load_lane(q + (h * d.t + (active ? i : 0)) * d.d, d.d, lane, qr);
    for (int c = 0; c < kPerLane; ++c) o[c] = 0;
    T m = -static_cast<T>(INFINITY), l = 0;
    // Keys any row of the block sees: all of them, or up to the block's last row when causal.
    const int64_t last_row = (i0 + kRowsPerBlock < d.t ? i0 + kRowsPerBlock : d.t) - 1;
    const int64_t block_keys = d.causal ? key_end(last_row, d) : d.s;
    const int64_t my_keys = active ? key_end(i, d) : 0;
    for (int64_t j0 = 0; j0 < block_keys; j0 += kTile) {
      __syncthreads();  // the previous tile is no longer read
      stage_rows(kh, j0, kTile, d.s, d.d, k_tile);
      stage_rows(vh, j0, kTile, d.s, d.dv, v_tile);
      __syncthreads();
      for (int jj = 0; jj < kTile && j0 + jj < my_keys; ++jj) {
        const T s = scale * lane_dot(qr, k_tile + jj * kFlashMaxHeadDim, d.d, lane);
        if (s > m) {  // a new max: rescale what was summed so far
          const T correction = exp_of(m - s);  // 0 on the first key (m = -inf)
          l *= correction;
          for (int c = 0; c < kPerLane; ++c) o[c] *= correction;
          m = s;
        }
        const T p = exp_of(s - m);
        l += p;
        for (int c = 0; c < kPerLane; ++c) o[c] += p * v_tile[jj * kFlashMaxHeadDim + lane + c * kWarpSize];
      }
    }
    if (!active) continue;
    const int64_t r = h * d.t + i;
    for (int c = 0; c < kPerLane; ++c) {
      const int64_t e = lane + c * kWarpSize;
      if (e < d.dv) out[r * d.dv + e] = o[c] / l;
    }
    if (lane == 0) lse[r] = m + log_of(l);
  }
}

// dq (and delta, for the dk/dv kernel), one warp per query row; the same block layout as forward.
template <typename T>
__global__ void backward_dq_kernel(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* g,
                                   T* delta, T* dq, Dims d, T scale) {
  constexpr int kTile = tile_rows<T>();
  __shared__ T k_tile[kTile * kFlashMaxHeadDim];
  __shared__ T v_tile[kTile * kFlashMaxHeadDim];
  const int lane = threadIdx.x % kWarpSize, warp_id = threadIdx.x / kWarpSize;
  const int64_t tiles_per_head = (d.t + kRowsPerBlock - 1) / kRowsPerBlock;
  for (int64_t job = blockIdx.x; job < d.bh * tiles_per_head; job += gridDim.x) {
    const int64_t h = job / tiles_per_head, i0 = (job % tiles_per_head) * kRowsPerBlock, i = i0 + warp_id;
    const bool active = i < d.t;
    const int64_t r = h * d.t + (active ? i : 0);
    T qr[kPerLane], gr[kPerLane], acc[kPerLane];
    load_lane(q + r * d.d, d.d, lane, qr);
    load_lane(g + r * d.dv, d.dv, lane, gr);
    for (int c = 0; c < kPerLane; ++c) acc[c] = 0;
    const T delta_i = lane_dot(gr, out + r * d.dv, d.dv, lane);
    const T lse_i = lse[r];
    if (active && lane == 0) delta[r] = delta_i;
    const int64_t last_row = (i0 + kRowsPerBlock < d.t ? i0 + kRowsPerBlock : d.t) - 1;
    const int64_t block_keys = d.causal ? key_end(last_row, d) : d.s;
    const int64_t my_keys = active ? key_end(i, d) : 0;
    for (int64_t j0 = 0; j0 < block_keys; j0 += kTile) {
      __syncthreads();
      stage_rows(k + h * d.s * d.d, j0, kTile, d.s, d.d, k_tile);
      stage_rows(v + h * d.s * d.dv, j0, kTile, d.s, d.dv, v_tile);
      __syncthreads();
      for (int jj = 0; jj < kTile && j0 + jj < my_keys; ++jj) {
        const T* kj = k_tile + jj * kFlashMaxHeadDim;
        const T p = exp_of(scale * lane_dot(qr, kj, d.d, lane) - lse_i);
        const T ds = p * (lane_dot(gr, v_tile + jj * kFlashMaxHeadDim, d.dv, lane) - delta_i);
        for (int c = 0; c < kPerLane; ++c) acc[c] += ds * kj[lane + c * kWarpSize];
      }
    }
    if (!active) continue;
    for (int c = 0; c < kPerLane; ++c) {
      const int64_t e = lane + c * kWarpSize;
      if (e < d.d) dq[r * d.d + e] = scale * acc[c];
    }
  }
}

// dk and dv, one warp per key row j (kRowsPerBlock key rows per block), walking the queries that see
// the block's keys in tiles staged in shared memory (with their lse and delta).
template <typename T>
__global__ void backward_dkdv_kernel(const T* q, const T* k, const T* v, const T* lse, const T* g, const T* delta,
                                     T* dk, T* dv, Dims d, T scale) {
  constexpr int kTile = tile_rows<T>();
  __shared__ T q_tile[kTile * kFlashMaxHeadDim];
  __shared__ T g_tile[kTile * kFlashMaxHeadDim];
  __shared__ T lse_tile[kTile];
  __shared__ T delta_tile[kTile];
  const int lane = threadIdx.x % kWarpSize, warp_id = threadIdx.x / kWarpSize;
  const int64_t tiles_per_head = (d.s + kRowsPerBlock - 1) / kRowsPerBlock;
  for (int64_t job = blockIdx.x; job < d.bh * tiles_per_head; job += gridDim.x) {
    const int64_t h = job / tiles_per_head, j0 = (job % tiles_per_head) * kRowsPerBlock, j = j0 + warp_id;
    const bool active = j < d.s;
    const int64_t kr = h * d.s + (active ? j : 0);
    T kj[kPerLane], vj[kPerLane], dk_acc[kPerLane], dv_acc[kPerLane];
    load_lane(k + kr * d.d, d.d, lane, kj);
    load_lane(v + kr * d.dv, d.dv, lane, vj);
    for (int c = 0; c < kPerLane; ++c) dk_acc[c] = dv_acc[c] = 0;
    // Causal: query i sees key j when i >= j, so the block needs the queries from j0 on.
    const int64_t first_query = d.causal ? j0 : 0, my_first = d.causal ? j : 0;
    for (int64_t i0 = first_query; i0 < d.t; i0 += kTile) {
      __syncthreads();
      stage_rows(q + h * d.t * d.d, i0, kTile, d.t, d.d, q_tile);
      stage_rows(g + h * d.t * d.dv, i0, kTile, d.t, d.dv, g_tile);
      for (int ii = threadIdx.x; ii < kTile; ii += blockDim.x) {
        const bool in = i0 + ii < d.t;
        lse_tile[ii] = in ? lse[h * d.t + i0 + ii] : T(0);
        delta_tile[ii] = in ? delta[h * d.t + i0 + ii] : T(0);
      }
      __syncthreads();
      if (!active) continue;
      for (int ii = 0; ii < kTile && i0 + ii < d.t; ++ii) {
        if (i0 + ii < my_first) continue;
        const T* qi = q_tile + ii * kFlashMaxHeadDim;
        const T* gi = g_tile + ii * kFlashMaxHeadDim;
        const T p = exp_of(scale * lane_dot(kj, qi, d.d, lane) - lse_tile[ii]);
        const T ds = p * (lane_dot(vj, gi, d.dv, lane) - delta_tile[ii]);
        for (int c = 0; c < kPerLane; ++c) {
          dv_acc[c] += p * gi[lane + c * kWarpSize];
          dk_acc[c] += ds * qi[lane + c * kWarpSize];
        }
      }
    }
    if (!active) continue;
    for (int c = 0; c < kPerLane; ++c) {
      const int64_t e = lane + c * kWarpSize;
      if (e < d.d) dk[kr * d.d + e] = scale * dk_acc[c];
      if (e < d.dv) dv[kr * d.dv + e] = dv_acc[c];
    }
  }
}

Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return {q.sizes()[0], q.sizes()[1], k.sizes()[1], q.sizes()[2], v.sizes()[2], causal};
}

unsigned blocks_for_rows(int64_t bh, int64_t rows) {
  const int64_t jobs = bh * ((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  return static_cast<unsigned>(jobs < 1 ? 1 : (jobs > kMaxBlocks ? kMaxBlocks : jobs));
}

void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                             const Tensor& out, const Tensor& lse) {
  set_device(q.device().index);
  const Dims d = dims_of(q, k, v, causal);
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "flash_attention_forward", [&] {
    forward_kernel<scalar_t><<<blocks_for_rows(d.bh, d.t), kThreads, 0, current_stream()>>>(
        data<scalar_t>(q), data<scalar_t>(k), data<scalar_t>(v), data<scalar_t>(out), data<scalar_t>(lse), d,
        static_cast<scalar_t>(scale));
    check_launch("flash_attention_forward");
  });
}

void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& g, double scale, bool causal, const Tensor& delta, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv) {
  set_device(q.device().index);
  const Dims d = dims_of(q, k, v, causal);
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "flash_attention_backward", [&] {
    const auto s = static_cast<scalar_t>(scale);
    // dq first: it writes delta, which the dk/dv kernel reads (the same stream orders them).
    backward_dq_kernel<scalar_t><<<blocks_for_rows(d.bh, d.t), kThreads, 0, current_stream()>>>(
        data<scalar_t>(q), data<scalar_t>(k), data<scalar_t>(v), data<scalar_t>(out), data<scalar_t>(lse),
        data<scalar_t>(g), data<scalar_t>(delta), data<scalar_t>(dq), d, s);
    check_launch("flash_attention_backward (dq)");
    backward_dkdv_kernel<scalar_t><<<blocks_for_rows(d.bh, d.s), kThreads, 0, current_stream()>>>(
        data<scalar_t>(q), data<scalar_t>(k), data<scalar_t>(v), data<scalar_t>(lse), data<scalar_t>(g),
        data<scalar_t>(delta), data<scalar_t>(dk), data<scalar_t>(dv), d, s);
    check_launch("flash_attention_backward (dk, dv)");
  });
}

}  // namespace

void add_flash_attention_kernels(Kernels& k) {
  k.flash_attention_forward = flash_attention_forward;
  k.flash_attention_backward = flash_attention_backward;
}

}  // namespace ctxpool::cuda
