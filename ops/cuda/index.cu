// Index kernels on CUDA: embedding (row lookup) and its scatter-add backward, gather, scatter_add_,
// with the semantics of ops/cpu/index.cpp. No atomics: every output element is written by one
// thread, which adds its contributions in index order (the CPU's order), so the results are the same
// bits on every run.
//
// The ops check that indices are in range before calling a kernel. A kernel cannot throw, so for an
// index the op should have refused it writes NaN (0 for integer dtypes) where it would have read,
// and drops a contribution it would have added out of bounds; it never touches memory out of bounds.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_index_kernels at the end).
namespace {

// NaN for floating dtypes, 0 for integer ones (numeric_limits gives T() when T has no NaN).
template <typename T>
__device__ inline T bad_index_value() { return std::numeric_limits<T>::quiet_NaN(); }

// weight [v, d], indices [n] -> out [n, d]: out[i] = weight[indices[i]]. One thread per output element.
template <typename T>
__global__ void embedding_kernel(const T* weight, const int64_t* indices, T* out, int64_t n, int64_t v, int64_t d) {
  CTXPOOL_CUDA_LOOP(i, n * d) {
    const int64_t row = indices[i / d];
    out[i] = row >= 0 && row < v ? weight[row * d + i % d] : bad_index_value<T>();
  }
}

void embedding(const Tensor& weight, const Tensor& indices, const Tensor& out) {
  const int64_t n = indices.numel();
  const int64_t v = weight.sizes()[0], d = weight.sizes()[1];
  if (n * d == 0) return;
  set_device(weight.device().index);
  CTXPOOL_DISPATCH_ALL(weight.dtype(), "embedding", [&] {
    embedding_kernel<scalar_t><<<blocks_for(n * d), kThreads, 0, current_stream()>>>(
        data<scalar_t>(weight), data<int64_t>(indices), data<scalar_t>(out), n, v, d);
  });
  check_launch("embedding_kernel");
}

// embedding_backward: a block covers kColTile neighbouring columns (a warp reads 32 columns of one
// gradient row: coalesced) with kOwnerLanes lanes. Thread (column c, owner o) owns the output rows
// [o * span, (o + 1) * span) in column c: it walks all indices in order and adds the gradient rows of
// those that fall in its range. Each output element thus has one writer, summing in index order.
constexpr int kColTile = 32;
constexpr int kOwnerLanes = kThreads / kColTile;
constexpr int64_t kMaxOwnerBlocks = 64;  // more owners only add index reads: each thread reads all n

template <typename T>
__global__ void embedding_backward_kernel(const T* grad, const int64_t* indices, T* out, int64_t n, int64_t v,
                                          int64_t d, int64_t span) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  if (c >= d) return;  // no barrier below
  const int64_t owner = static_cast<int64_t>(blockIdx.y) * kOwnerLanes + threadIdx.y;
  const int64_t lo = owner * span;
  const int64_t hi = lo + span < v ? lo + span : v;  // out-of-range rows fall in no thread's range
  if (lo >= hi) return;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = indices[i];
    if (row >= lo && row < hi) out[row * d + c] += grad[i * d + c];
  }
}

void embedding_backward(const Tensor& grad, const Tensor& indices, const Tensor& out) {
  const int64_t n = indices.numel();
  const int64_t v = out.sizes()[0], d = out.sizes()[1];
  if (out.numel() == 0) return;
  CTXPOOL_CHECK(out.is_contiguous(), "embedding backward: the CUDA kernel writes a contiguous output, got strides ",
                out.strides());
  set_device(out.device().index);
  // Zero first (all-zero bits are 0.0 in float32 and float64).
  check(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), current_stream()), "cudaMemsetAsync");
  if (n == 0) return;
  const int64_t owner_blocks = std::min<int64_t>((v + kOwnerLanes - 1) / kOwnerLanes, kMaxOwnerBlocks);
  const int64_t owners = owner_blocks * kOwnerLanes;
  const int64_t span = (v + owners - 1) / owners;
  const dim3 grid(static_cast<unsigned>((d + kColTile - 1) / kColTile), static_cast<unsigned>(owner_blocks));
  const dim3 block(kColTile, kOwnerLanes);
  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "embedding_backward", [&] {
    embedding_backward_kernel<scalar_t><<<grid, block, 0, current_stream()>>>(
        data<scalar_t>(grad), data<int64_t>(indices), data<scalar_t>(out), n, v, d, span);
  });
  check_launch("embedding_backward_kernel");
}

// out[p] = x[p with coordinate dim replaced by index[p]] for every position p of index's shape.
// offs gives the offsets of p in {index, out, x}; x's stride in dim is 0 there and added back as
// index[p] * x_dim_stride.
template <typename T>
__global__ void gather_kernel(const T* x, const int64_t* index, T* out, StridedOffsets<3> offs, int64_t n,
                              int64_t x_dim_size, int64_t x_dim_stride) {
  CTXPOOL_CUDA_LOOP(i, n) {
    int64_t off[3];
    offs.at(i, off);
    const int64_t at = index[off[0]];
    out[off[1]] = at >= 0 && at < x_dim_size ? x[off[2] + at * x_dim_stride] : bad_index_value<T>();
  }
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const int64_t n = index.numel();
  if (n == 0) return;
  Shape x_strides = x.strides();
  x_strides[dim] = 0;
  const auto offs = make_offsets<3>("gather", index.sizes(), {index.strides(), out.strides(), x_strides});
  set_device(x.device().index);
  CTXPOOL_DISPATCH_ALL(x.dtype(), "gather", [&] {
    gather_kernel<scalar_t><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<int64_t>(index), data<scalar_t>(out), offs, n, x.sizes()[dim], x.strides()[dim]);
  });
  check_launch("gather_kernel");
}

// out[p with coordinate dim replaced by index[p]] += src[p] for every position p of index's shape.
// One thread per line of index along dim (every coordinate but dim fixed): the out elements a line
// reaches share its other coordinates, so no two lines reach the same one, and a thread walking its
// line in order adds each element's contributions in the CPU's (row-major) order. lines gives the
// offsets of a line's start in {index, src, out} (out's stride in dim is 0 there).
template <typename T>
__global__ void scatter_add_kernel(T* out, const int64_t* index, const T* src, StridedOffsets<3> lines,
                                   int64_t n_lines, int64_t len, int64_t index_step, int64_t src_step,
                                   int64_t out_dim_size, int64_t out_dim_stride) {
  CTXPOOL_CUDA_LOOP(l, n_lines) {
    int64_t off[3];
    lines.at(l, off);
    for (int64_t k = 0; k < len; ++k) {
      const int64_t at = index[off[0] + k * index_step];
      if (at >= 0 && at < out_dim_size) out[off[2] + at * out_dim_stride] += src[off[1] + k * src_step];
    }
  }
}

void scatter_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t n = index.numel();
  if (n == 0) return;
  Shape line_sizes = index.sizes();
  const int64_t len = line_sizes[dim];
  line_sizes[dim] = 1;
  Shape out_strides = out.strides();
  out_strides[dim] = 0;
  const auto lines = make_offsets<3>("scatter_add", line_sizes, {index.strides(), src.strides(), out_strides});
  const int64_t n_lines = n / len;
  set_device(out.device().index);
  CTXPOOL_DISPATCH_ALL(out.dtype(), "scatter_add", [&] {
    scatter_add_kernel<scalar_t><<<blocks_for(n_lines), kThreads, 0, current_stream()>>>(
        data<scalar_t>(out), data<int64_t>(index), data<scalar_t>(src), lines, n_lines, len, index.strides()[dim],
        src.strides()[dim], out.sizes()[dim], out.strides()[dim]);
  });
  check_launch("scatter_add_kernel");
}

}  // namespace

void add_index_kernels(Kernels& k) {
  k.embedding = embedding;
  k.embedding_backward = embedding_backward;
  k.gather = gather;
  k.scatter_add_ = scatter_add_;
}

}  // namespace ctxpool::cuda
