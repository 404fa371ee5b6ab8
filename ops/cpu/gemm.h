// The CPU's matrix product for kernels that multiply inside their own loops (conv2d's fused kernels):
// BLAS sgemm / dgemm where the build has it, a plain loop otherwise (ops/cpu/matmul.cpp).
// Row-major C [M, N] = op(A) [M, K] @ op(B) [K, N] (+= with accumulate); op transposes when trans_a /
// trans_b is set.
// Called inside a parallel region, it runs on the calling thread only (OpenBLAS's OpenMP build checks).
#pragma once
#include <cstdint>

namespace ctxpool::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate = false);

}  // namespace ctxpool::cpu
