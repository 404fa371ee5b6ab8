// Our own float32 GEMM for CPUs with AVX-512, used by ops/cpu/gemm.h's gemm<float> in place of BLAS.
//
// Why: the OpenBLAS a machine has may run only its AVX2 kernels on an AVX-512 CPU (too old to know
// the CPU, or told so by OPENBLAS_CORETYPE because its AVX-512 kernels are wrong there: this
// workplace sets OPENBLAS_CORETYPE=Haswell on its AMD Zen 5 machines). AVX2 does half the arithmetic
// per instruction, so every matmul and convolution ran at about half the CPU's speed. This kernel is
// the classic blocked design (Goto / BLIS): pack panels of A and B so that the inner loop reads
// memory in order, and multiply them in 12 x 32 tiles held in 24 of the 32 vector registers. A @ B^T
// with at most 16 columns (a convolution's weight gradient with few input channels) is instead a
// grid of dot products over rows that are already contiguous.
//
// Deterministic: every element of C is summed over k in the same order (k-blocks, each in order; the
// dot products' lanes and their reduction fixed) whatever the thread count; threads split C into
// blocks of whole tiles (of 4 rows for the dot products). Which path runs depends on the shape only.
#pragma once
#include <cstdint>

namespace ctxpool::cpu {

// Whether this CPU has AVX-512 F (and the build targets x86-64 with a compiler that can emit it).
bool sgemm_avx512_available();

// Row-major C [M, N] = op(A) [M, K] @ op(B) [K, N], or += with accumulate (op transposes when trans_a /
// trans_b is set).
// Only on a CPU where sgemm_avx512_available(). Inside a parallel region it runs on the calling thread.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate = false);

}  // namespace ctxpool::cpu
