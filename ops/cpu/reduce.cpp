// Row reductions. Every reduction is first laid out as contiguous [rows, cols] by the op
// (reduced dims moved last), so one kernel serves any set of dims.
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/fast_math.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_reduce_kernels at the end).
namespace {

// Fixed block size: partial sums are formed per block and added in block order, so the result is
// the same for every thread count.
constexpr int64_t kSumBlock = 8192;

// x [rows, cols] -> out [rows]
void sum_rows(const Tensor& x, const Tensor& out) {
  const int64_t rows = out.numel();
  const int64_t cols = rows ? x.numel() / rows : 0;
  const int64_t blocks = std::max<int64_t>(1, (cols + kSumBlock - 1) / kSumBlock);
  CTXPOOL_DISPATCH_ALL(x.dtype(), "sum", [&] {
    using T = scalar_t;
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    std::vector<Acc> partial(rows * blocks, Acc(0));
    parallel_for(0, rows * blocks, std::max<int64_t>(1, kSumBlock / std::max<int64_t>(cols, 1)),
                 [&](int64_t b0, int64_t b1) {
                   for (int64_t rb = b0; rb < b1; ++rb) {
                     const int64_t r = rb / blocks, blk = rb % blocks;
                     const int64_t c0 = blk * kSumBlock;
                     const int64_t c1 = std::min(cols, c0 + kSumBlock);
                     partial[rb] = sum_of(xp + r * cols + c0, c1 - c0);
                   }
                 });
    for (int64_t r = 0; r < rows; ++r) {
      Acc acc = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) acc += partial[r * blocks + blk];
      op[r] = static_cast<T>(acc);
    }
  });
}

// x [outer, reduce, inner] -> out [outer, inner]. Tiles of 256 columns accumulate in double, row by
// row in order: vectorisable along the columns and deterministic.
void sum_middle(const Tensor& x, int64_t outer, int64_t reduce, int64_t inner, const Tensor& out) {
  constexpr int64_t kTile = 256;
  const int64_t tiles = (inner + kTile - 1) / kTile;
  CTXPOOL_DISPATCH_ALL(x.dtype(), "sum", [&] {
    using T = scalar_t;
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    parallel_for(0, outer * tiles, 1, [&](int64_t t0, int64_t t1) {
      Acc acc[kTile];
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t a = t / tiles, c0 = (t % tiles) * kTile;
        const int64_t w = std::min(kTile, inner - c0);
        for (int64_t c = 0; c < w; ++c) acc[c] = 0;
        for (int64_t r = 0; r < reduce; ++r) {
          const T* row = xp + (a * reduce + r) * inner + c0;
          for (int64_t c = 0; c < w; ++c) acc[c] += static_cast<Acc>(row[c]);
        }
        for (int64_t c = 0; c < w; ++c) op[a * inner + c0 + c] = static_cast<T>(acc[c]);
      }
    });
  });
}

// x [rows, cols] -> values [rows], indices [rows]. NaN wins (propagates), ties keep the first.
void max_or_min_rows(const Tensor& x, const Tensor& values, const Tensor& indices, bool find_max) {
  const int64_t rows = values.numel();
  const int64_t cols = rows ? x.numel() / rows : 0;
  CTXPOOL_DISPATCH_ALL(x.dtype(), "max", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* vp = values.data_ptr<T>();
    int64_t* ip = indices.data_ptr<int64_t>();
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) {
                     const T* row = xp + r * cols;
                     int64_t best = 0;
                     for (int64_t c = 1; c < cols; ++c) {
                       const T v = row[c], b = row[best];
                       if (b != b) break;  // NaN already chosen
                       if (v != v || (find_max ? v > b : v < b)) best = c;
                     }
                     vp[r] = row[best];
                     ip[r] = best;
                   }
                 });
  });
}

}  // namespace

void add_reduce_kernels(Kernels& k) {
  k.sum_rows = sum_rows;
  k.sum_middle = sum_middle;
  k.max_or_min_rows = max_or_min_rows;
}

}  // namespace ctxpool::cpu
