// The warp-per-row scheme the row kernels share (local attention, context_pool1d, context_pool2d):
// one warp per row of a grid-stride loop, lanes splitting the features, and reductions with a
// butterfly of shuffles so that every lane ends with the same bits.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/launch.cuh"

namespace ctxpool::cuda::warp {

constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;  // warps per block
constexpr unsigned kFullMask = 0xffffffffu;

// The sum over the warp; a butterfly, so every lane gets the same bits.
template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// <p, q> over n elements, lanes striding the elements; the whole warp calls it.
template <typename T>
__device__ T warp_dot(const T* p, const T* q, int64_t n, int lane) {
  T acc = 0;
  for (int64_t e = lane; e < n; e += kWarpSize) acc += p[e] * q[e];
  return warp_sum(acc);
}

// Global warp index and warp count of a grid-stride loop over rows.
__device__ inline int64_t first_warp() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
}
__device__ inline int64_t warp_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarpSize; }

// Blocks for a loop with one warp per row.
inline unsigned warp_blocks(int64_t rows) { return blocks_for((rows + kWarps - 1) / kWarps * kThreads); }

// The CPU's sigmoid, in double: no overflow of exp for either sign.
__device__ inline double sigmoid(double v) {
  if (v >= 0) return 1.0 / (1.0 + exp(-v));
  const double e = exp(v);
  return e / (1.0 + e);
}

}  // namespace ctxpool::cuda::warp
