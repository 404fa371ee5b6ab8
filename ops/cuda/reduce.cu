// Row reductions on CUDA: sum_rows, sum_middle, max_or_min_rows, with the semantics of
// ops/cpu/reduce.cpp. Deterministic: no atomics; every sum is added in an order fixed by the shape
// alone (per-thread strided partials, then a fixed shared-memory tree), so a run gives the same bits
// every time (not the CPU's bits: the order differs). Float sums accumulate in double, integer sums
// in int64, as on the CPU.
//
// A few long rows (a whole-tensor sum such as a gradient norm's has one row) would leave all but a
// few multiprocessors idle with one block per row, so they are reduced in two passes: blocks over
// fixed chunks of kChunkCols columns write partials to scratch, then one block per row combines its
// partials (strided per thread, then the fixed tree). The chunking depends on the shape only, so the
// bits stay fixed.
#include <cstdint>
#include <type_traits>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_reduce_kernels at the end).
namespace {

// Rows of at most this many columns get one thread each; longer rows get one block each.
constexpr int64_t kThreadPerRowCols = 32;
// Fewer rows than this, each longer than two chunks, take the two-pass path.
constexpr int64_t kSplitBelowRows = 256;
constexpr int64_t kChunkCols = 8192;

bool split_rows(int64_t rows, int64_t cols) { return rows < kSplitBelowRows && cols > 2 * kChunkCols; }
int64_t chunks_of(int64_t cols) { return (cols + kChunkCols - 1) / kChunkCols; }

// Blocks for a loop over `items` blocks' worth of work (block-stride loops cover the rest).
inline unsigned blocks_for_items(int64_t items) {
  return static_cast<unsigned>(items < kMaxBlocks ? items : kMaxBlocks);
}

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <typename T>
__device__ inline bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

// ---- sum_rows ----

// row[begin], row[begin + step], ... summed in order.
template <typename T>
__device__ Acc<T> strided_sum(const T* row, int64_t begin, int64_t step, int64_t cols) {
  Acc<T> acc = 0;
  for (int64_t c = begin; c < cols; c += step) acc += static_cast<Acc<T>>(row[c]);
  return acc;
}

// Short rows: one thread sums a whole row, left to right.
template <typename T>
__global__ void sum_rows_thread_kernel(const T* x, T* out, int64_t rows, int64_t cols) {
  CTXPOOL_CUDA_LOOP(r, rows) out[r] = static_cast<T>(strided_sum(x + r * cols, 0, 1, cols));
}

// Long rows: one block per row; thread t sums columns t, t + kThreads, ..., then the block adds the
// partials in a fixed tree.
template <typename T>
__global__ void sum_rows_block_kernel(const T* x, T* out, int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // the same trip count for the whole block
    const Acc<T> partial = strided_sum(x + r * cols, threadIdx.x, kThreads, cols);
    const Acc<T> total = block_reduce(partial, SumOp{});
    if (threadIdx.x == 0) out[r] = static_cast<T>(total);
  }
}

// Two passes, first: block b of a grid-stride loop sums chunk (b % chunks) of row (b / chunks) into
// partial[b].
template <typename T>
__global__ void sum_chunks_kernel(const T* x, Acc<T>* partial, int64_t rows, int64_t cols, int64_t chunks) {
  for (int64_t b = blockIdx.x; b < rows * chunks; b += gridDim.x) {  // uniform over the block
    const int64_t r = b / chunks, first = (b % chunks) * kChunkCols;
    const int64_t n = cols - first < kChunkCols ? cols - first : kChunkCols;
    const Acc<T> mine = strided_sum(x + r * cols + first, threadIdx.x, kThreads, n);
    const Acc<T> total = block_reduce(mine, SumOp{});
    if (threadIdx.x == 0) partial[b] = total;
  }
}

// Second: one block per row adds its chunks' partials (a fixed tree, as above).
template <typename T>
__global__ void sum_partials_kernel(const Acc<T>* partial, T* out, int64_t rows, int64_t chunks) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const Acc<T> total = block_reduce(strided_sum(partial + r * chunks, threadIdx.x, kThreads, chunks), SumOp{});
    if (threadIdx.x == 0) out[r] = static_cast<T>(total);
  }
}

// x [rows, cols] -> out [rows]. rows > 0 with cols == 0 (a sum over an empty dim) writes zeros.
void sum_rows(const Tensor& x, const Tensor& out) {
  const int64_t rows = out.numel();
  if (rows == 0) return;
  const int64_t cols = x.numel() / rows;
  set_device(out.device().index);
  CTXPOOL_DISPATCH_ALL(x.dtype(), "sum", [&] {
    using T = scalar_t;
    if (cols <= kThreadPerRowCols) {
      sum_rows_thread_kernel<<<blocks_for(rows), kThreads, 0, current_stream()>>>(data<T>(x), data<T>(out), rows,
                                                                                   cols);
    } else if (split_rows(rows, cols)) {
      const int64_t chunks = chunks_of(cols);
      const Tensor partial = empty({rows * chunks}, TensorOptions(is_floating(x.dtype()) ? kFloat64 : kInt64)
                                                        .device(out.device()));  // (freed in stream order)
      sum_chunks_kernel<<<blocks_for_items(rows * chunks), kThreads, 0, current_stream()>>>(
          data<T>(x), data<Acc<T>>(partial), rows, cols, chunks);
      check_launch("sum_rows (chunks)");
      sum_partials_kernel<<<blocks_for_items(rows), kThreads, 0, current_stream()>>>(data<Acc<T>>(partial),
                                                                                     data<T>(out), rows, chunks);
    } else {
      sum_rows_block_kernel<<<blocks_for_items(rows), kThreads, 0, current_stream()>>>(data<T>(x), data<T>(out),
                                                                                       rows, cols);
    }
  });
  check_launch("sum_rows");
}

// ---- sum_middle ----

// A block owns kMiddleCols adjacent columns of one outer index: thread (group g, column c) sums rows
// g, g + kMiddleGroups, ... of column c, then the group partials are added in group order. This keeps
// a bias gradient ([1, B*T, C]) spread over many threads without atomics.
constexpr int kMiddleCols = 16;
constexpr int kMiddleGroups = kThreads / kMiddleCols;

template <typename T>
__global__ void sum_middle_kernel(const T* x, T* out, int64_t outer, int64_t reduce, int64_t inner,
                                  int64_t tiles) {
  __shared__ Acc<T> partial[kMiddleGroups][kMiddleCols];
  const int col = threadIdx.x % kMiddleCols;
  const int group = threadIdx.x / kMiddleCols;
  for (int64_t t = blockIdx.x; t < outer * tiles; t += gridDim.x) {  // uniform over the block
    const int64_t a = t / tiles;
    const int64_t c = (t % tiles) * kMiddleCols + col;
    Acc<T> acc = 0;
    if (c < inner) {
      const T* column = x + a * reduce * inner + c;
      for (int64_t r = group; r < reduce; r += kMiddleGroups) acc += static_cast<Acc<T>>(column[r * inner]);
    }
    __syncthreads();  // the previous tile's partials have been read
    partial[group][col] = acc;
    __syncthreads();
    if (group == 0 && c < inner) {
      Acc<T> total = 0;
      for (int g = 0; g < kMiddleGroups; ++g) total += partial[g][col];
      out[a * inner + c] = static_cast<T>(total);
    }
  }
}

// x [outer, reduce, inner] -> out [outer, inner]. reduce == 0 writes zeros.
void sum_middle(const Tensor& x, int64_t outer, int64_t reduce, int64_t inner, const Tensor& out) {
  if (outer == 0 || inner == 0) return;
  set_device(out.device().index);
  const int64_t tiles = (inner + kMiddleCols - 1) / kMiddleCols;
  CTXPOOL_DISPATCH_ALL(x.dtype(), "sum", [&] {
    using T = scalar_t;
    sum_middle_kernel<<<blocks_for_items(outer * tiles), kThreads, 0, current_stream()>>>(
        data<T>(x), data<T>(out), outer, reduce, inner, tiles);
  });
  check_launch("sum_middle");
}

// ---- max_or_min_rows ----

// A candidate: value and column; column -1 means "none yet" (a thread with no columns).
template <typename T>
struct Best {
  T value;
  int64_t index;
};

// The CPU's scan over row[begin], row[begin + step], ...: the first NaN wins and ends the scan;
// otherwise the first strict maximum (or minimum) is kept, so ties keep the earliest column.
template <typename T>
__device__ Best<T> scan_best(const T* row, int64_t begin, int64_t step, int64_t cols, bool find_max) {
  Best<T> best{T(0), -1};
  for (int64_t c = begin; c < cols; c += step) {
    if (best.index >= 0 && is_nan(best.value)) break;  // NaN already chosen
    const T v = row[c];
    if (best.index < 0 || is_nan(v) || (find_max ? v > best.value : v < best.value)) best = {v, c};
  }
  return best;
}

// Combines two threads' candidates so that the block result equals the CPU's sequential scan: a NaN
// beats any number, the better number wins, and between equals (or two NaNs) the lower column wins.
struct BestOp {
  bool find_max;
  template <typename T>
  __device__ Best<T> operator()(Best<T> a, Best<T> b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = is_nan(a.value), b_nan = is_nan(b.value);
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.value != b.value) return (find_max ? a.value > b.value : a.value < b.value) ? a : b;
    return a.index < b.index ? a : b;
  }
};

// Short rows: one thread scans a whole row.
template <typename T>
__global__ void max_or_min_thread_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t cols,
                                         bool find_max) {
  CTXPOOL_CUDA_LOOP(r, rows) {
    const Best<T> best = scan_best(x + r * cols, 0, 1, cols, find_max);
    values[r] = best.value;
    indices[r] = best.index;
  }
}

// Long rows: one block per row; each thread scans every kThreads-th column, then a fixed tree
// combines the candidates.
template <typename T>
__global__ void max_or_min_block_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t cols,
                                        bool find_max) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {  // uniform over the block
    const Best<T> mine = scan_best(x + r * cols, threadIdx.x, kThreads, cols, find_max);
    const Best<T> best = block_reduce(mine, BestOp{find_max});
    if (threadIdx.x == 0) {
      values[r] = best.value;
      indices[r] = best.index;
    }
  }
}

// Two passes, first: block b scans chunk (b % chunks) of row (b / chunks); its candidate (with the
// column in the whole row) goes to best_values[b], best_indices[b].
template <typename T>
__global__ void max_or_min_chunks_kernel(const T* x, T* best_values, int64_t* best_indices, int64_t rows,
                                         int64_t cols, int64_t chunks, bool find_max) {
  for (int64_t b = blockIdx.x; b < rows * chunks; b += gridDim.x) {  // uniform over the block
    const int64_t r = b / chunks, first = (b % chunks) * kChunkCols;
    const int64_t n = cols - first < kChunkCols ? cols - first : kChunkCols;
    const Best<T> mine = scan_best(x + r * cols + first, threadIdx.x, kThreads, n, find_max);
    const Best<T> best = block_reduce(mine, BestOp{find_max});
    if (threadIdx.x == 0) {
      best_values[b] = best.value;
      best_indices[b] = best.index + first;
    }
  }
}

// Second: one block per row combines its chunks' candidates with BestOp, which gives the CPU's
// sequential scan whatever the grouping (a NaN wins, then the better value, then the lower column).
template <typename T>
__global__ void max_or_min_partials_kernel(const T* best_values, const int64_t* best_indices, T* values,
                                           int64_t* indices, int64_t rows, int64_t chunks, bool find_max) {
  const BestOp op{find_max};
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    Best<T> mine{T(0), -1};
    for (int64_t k = threadIdx.x; k < chunks; k += kThreads)
      mine = op(mine, Best<T>{best_values[r * chunks + k], best_indices[r * chunks + k]});
    const Best<T> best = block_reduce(mine, op);
    if (threadIdx.x == 0) {
      values[r] = best.value;
      indices[r] = best.index;
    }
  }
}

// x [rows, cols] -> values [rows], indices [rows]. NaN wins (propagates), ties keep the first.
void max_or_min_rows(const Tensor& x, const Tensor& values, const Tensor& indices, bool find_max) {
  const int64_t rows = values.numel();
  if (rows == 0) return;
  const int64_t cols = x.numel() / rows;
  CTXPOOL_CHECK(cols > 0, find_max ? "max" : "min", ": cannot reduce rows of 0 columns");
  set_device(values.device().index);
  CTXPOOL_DISPATCH_ALL(x.dtype(), "max", [&] {
    using T = scalar_t;
    if (cols <= kThreadPerRowCols) {
      max_or_min_thread_kernel<<<blocks_for(rows), kThreads, 0, current_stream()>>>(
          data<T>(x), data<T>(values), data<int64_t>(indices), rows, cols, find_max);
    } else if (split_rows(rows, cols)) {
      const int64_t chunks = chunks_of(cols);
      const Tensor best_values = empty({rows * chunks}, TensorOptions(x.dtype()).device(values.device()));
      const Tensor best_indices = empty({rows * chunks}, TensorOptions(kInt64).device(values.device()));
      max_or_min_chunks_kernel<<<blocks_for_items(rows * chunks), kThreads, 0, current_stream()>>>(
          data<T>(x), data<T>(best_values), data<int64_t>(best_indices), rows, cols, chunks, find_max);
      check_launch("max_or_min_rows (chunks)");
      max_or_min_partials_kernel<<<blocks_for_items(rows), kThreads, 0, current_stream()>>>(
          data<T>(best_values), data<int64_t>(best_indices), data<T>(values), data<int64_t>(indices), rows, chunks,
          find_max);
    } else {
      max_or_min_block_kernel<<<blocks_for_items(rows), kThreads, 0, current_stream()>>>(
          data<T>(x), data<T>(values), data<int64_t>(indices), rows, cols, find_max);
    }
  });
  check_launch("max_or_min_rows");
}

}  // namespace

void add_reduce_kernels(Kernels& k) {
  k.sum_rows = sum_rows;
  k.sum_middle = sum_middle;
  k.max_or_min_rows = max_or_min_rows;
}

}  // namespace ctxpool::cuda
