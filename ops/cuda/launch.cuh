// What every CUDA kernel file shares: typed pointers, launch sizes, the strided-offset calculator for
// elementwise kernels on any view, and deterministic block reductions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"
#include "cuda/check.h"

namespace ctxpool::cuda {

constexpr int kThreads = 256;     // threads per block for elementwise and row kernels
constexpr int kMaxDims = 8;       // tensors with more dims are refused by the elementwise kernels
constexpr int64_t kMaxBlocks = 65535 * 8;  // grid-stride loops cover the rest

template <typename T>
T* data(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

// Blocks for a grid-stride loop over n elements.
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

// After a launch: turns a bad configuration into an error naming the kernel. No synchronisation, so
// a fault while the kernel runs surfaces at a later check, unless CTXPOOL_CUDA_SYNC=1.
inline void check_launch(const char* kernel_name) {
  check(cudaGetLastError(), kernel_name);
  if (sync_after_launch()) check(cudaStreamSynchronize(current_stream()), kernel_name);
}

// A grid-stride loop: for (i = this thread; i < n; i += all threads).
#define CTXPOOL_CUDA_LOOP(i, n)                                                                      \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);            \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Offsets of N operands of one shape, each with its own strides (0 in broadcast dims): element i
// (row-major over sizes) of operand k lives at offset(i)[k]. Passed to kernels by value.
// Where the shape holds fewer than 2^31 elements (set_fits_32), the division and remainder per dim
// run in 32 bits: a 64-bit division is a long instruction sequence on GPUs, a 32-bit one is short.
template <int N>
struct StridedOffsets {
  int nd = 0;
  bool fits_32 = false;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  __host__ __device__ void at(int64_t i, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (fits_32) {
      uint32_t j = static_cast<uint32_t>(i);
      for (int d = nd - 1; d >= 0; --d) {
        const uint32_t size = static_cast<uint32_t>(sizes[d]);
        const uint32_t idx = j % size;
        j /= size;
        for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(idx) * strides[k][d];
      }
      return;
    }
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t idx = i % sizes[d];
      i /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
  // Call once sizes are final.
  void set_fits_32() {
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) n *= sizes[d];
    fits_32 = n < (int64_t(1) << 31);
  }
};

// Built from the output's sizes and each operand's strides (already broadcast to those sizes).
template <int N>
StridedOffsets<N> make_offsets(const char* op, const Shape& sizes, std::initializer_list<Shape> strides) {
  CTXPOOL_CHECK(static_cast<int>(sizes.size()) <= kMaxDims, op, ": CUDA kernels take at most ", kMaxDims,
                " dims, got a tensor of shape ", sizes);
  StridedOffsets<N> s;
  s.nd = static_cast<int>(sizes.size());
  for (int d = 0; d < s.nd; ++d) s.sizes[d] = sizes[d];
  int k = 0;
  for (const Shape& st : strides) {
    for (int d = 0; d < s.nd; ++d) s.strides[k][d] = st[d];
    ++k;
  }
  s.set_fits_32();
  return s;
}

// The sum (or max) of v over the block, in a fixed order (a shared-memory tree), so a row reduced by
// one block gives the same bits every run. Every thread of the block must call it; all get the result.
// blockDim.x must be a power of two, at most kThreads (one-dimensional blocks).
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op) {
  __shared__ T scratch[kThreads];
  __syncthreads();  // scratch may still be read by a previous call
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) scratch[threadIdx.x] = op(scratch[threadIdx.x], scratch[threadIdx.x + half]);
    __syncthreads();
  }
  return scratch[0];
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

}  // namespace ctxpool::cuda
