// Row reductions. Every reduction is first laid out as contiguous [rows, cols] by the op
// (reduced dims moved last), so one kernel serves any set of dims.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/kernels.h"
#include "core/parallel.h"

namespace ctxpool::cpu {

namespace {
// Fixed block size: partial sums are formed per block and added in block order, so the result is
// the same for every thread count.
constexpr int64_t kSumBlock = 8192;
}

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
                     const T* row = xp + r * cols;
                     const int64_t c1 = std::min(cols, (blk + 1) * kSumBlock);
                     Acc acc = 0;
                     for (int64_t c = blk * kSumBlock; c < c1; ++c) acc += static_cast<Acc>(row[c]);
                     partial[rb] = acc;
                   }
                 });
    for (int64_t r = 0; r < rows; ++r) {
      Acc acc = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) acc += partial[r * blocks + blk];
      op[r] = static_cast<T>(acc);
    }
  });
}

// x [rows, cols] -> values [rows], indices [rows]. NaN wins (propagates), ties keep the first.
void max_rows(const Tensor& x, const Tensor& values, const Tensor& indices, bool find_max) {
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

}  // namespace ctxpool::cpu
