// What the 1-D and 2-D context pooling CPU kernels share (ops/cpu/context_pool.cpp, context_pool2d.cpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ctxpool::cpu::context_pool_detail {

// sigmoid without overflow for large |v|.
inline double sigmoid(double v) {
  if (v >= 0) return 1.0 / (1.0 + std::exp(-v));
  const double e = std::exp(v);
  return e / (1.0 + e);
}

// <p, q> over n elements with eight partial sums (vectorisable; a fixed order).
template <typename T>
T dot(const T* p, const T* q, int64_t n) {
  T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t e = 0;
  for (; e + 8 <= n; e += 8)
    for (int l = 0; l < 8; ++l) acc[l] += p[e + l] * q[e + l];
  for (; e < n; ++e) acc[e % 8] += p[e] * q[e];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Rows per parallel_for chunk for rows of `work_per_row` multiply-adds.
inline int64_t row_grain(int64_t work_per_row) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(work_per_row, 1));
}

}  // namespace ctxpool::cpu::context_pool_detail
