// The strided elementwise loop shared by CPU kernels. Operand k is read/written at
// base_k + sum_d index_d * strides_k[d]; broadcast operands simply have stride 0 in the broadcast
// dims. The innermost dim is handled in runs so the common case (stride 1) is a tight loop; adjacent
// dims that every operand steps through as one are merged first, so that the runs are as long as the
// layouts allow (a per-channel bias added to [B, C, H, W] runs along H * W, not W).
#pragma once
#include <array>
#include <vector>

#include "core/parallel.h"
#include "core/shape.h"

namespace ctxpool::cpu {

constexpr int64_t kElementwiseGrain = 32768;

// The same iteration over fewer dims: size-1 dims dropped, and dim d folded into the kept dim before it
// wherever every operand's stride there is exactly stride[d] * shape[d]. Element i (in row-major order
// of `shape`) keeps its offsets, so the order and the split into parallel chunks are unchanged.
template <size_t N>
void coalesce_dims(const Shape& shape, const std::array<Shape, N>& strides, Shape* merged_shape,
                   std::array<Shape, N>* merged_strides) {
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool fold = !merged_shape->empty();
    for (size_t k = 0; k < N && fold; ++k) fold = (*merged_strides)[k].back() == strides[k][d] * shape[d];
    if (fold) {
      merged_shape->back() *= shape[d];
      for (size_t k = 0; k < N; ++k) (*merged_strides)[k].back() = strides[k][d];
    } else {
      merged_shape->push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) (*merged_strides)[k].push_back(strides[k][d]);
    }
  }
}

// f(offsets, inner_strides, run): process `run` consecutive innermost elements starting at offsets.
template <size_t N, typename F>
void for_each_run(const Shape& full_shape, const std::array<Shape, N>& full_strides, const F& f) {
  if (shape_numel(full_shape) == 0) return;
  Shape shape;
  std::array<Shape, N> strides;
  coalesce_dims(full_shape, full_strides, &shape, &strides);
  const int64_t n = shape_numel(shape);
  const int64_t nd = static_cast<int64_t>(shape.size());
  std::array<int64_t, N> inner{};
  for (size_t k = 0; k < N; ++k) inner[k] = nd ? strides[k][nd - 1] : 0;
  const int64_t inner_size = nd ? shape[nd - 1] : 1;

  parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(nd, 0);
    int64_t rem = begin;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    int64_t i = begin;
    while (i < end) {
      std::array<int64_t, N> off{};
      for (size_t k = 0; k < N; ++k)
        for (int64_t d = 0; d < nd; ++d) off[k] += idx[d] * strides[k][d];
      const int64_t pos = nd ? idx[nd - 1] : 0;
      const int64_t run = std::min(end - i, inner_size - pos);
      f(off, inner, run);
      i += run;
      if (nd == 0) break;
      // Advance the multi-index by `run` (which ends the current row or the range).
      idx[nd - 1] += run;
      for (int64_t d = nd - 1; d > 0 && idx[d] >= shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

}  // namespace ctxpool::cpu
