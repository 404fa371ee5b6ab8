// Batched matrix multiply: one GEMM per batch entry. float32 runs our AVX-512 kernel where the CPU has
// AVX-512 (ops/cpu/sgemm_avx512.h says why), else BLAS sgemm; float64 runs BLAS dgemm (OpenBLAS's
// OpenMP build shares our thread pool); without BLAS, a plain loop. CTXPOOL_GEMM=blas sends float32
// to BLAS too (to compare the two, or to keep a long experiment on one kernel).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/sgemm_avx512.h"
#include "ops/kernels.h"

#ifdef CTXPOOL_HAVE_BLAS
#include <cblas.h>
#endif

namespace ctxpool::cpu {

namespace {

template <typename T>
void gemm_fallback(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                   const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  // C[M, N] (+)= op(A)[M, K] @ op(B)[K, N], i-k-j order so the inner loop runs along rows of B and C.
  auto a_at = [&](int64_t i, int64_t k) { return ta ? A[k * lda + i] : A[i * lda + k]; };
  auto b_at = [&](int64_t k, int64_t j) { return tb ? B[j * ldb + k] : B[k * ldb + j]; };
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (!accumulate)
      for (int64_t j = 0; j < N; ++j) c[j] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T aik = a_at(i, k);
      for (int64_t j = 0; j < N; ++j) c[j] += aik * b_at(k, j);
    }
  }
}

bool use_own_sgemm() {
  static const bool own = [] {
    const char* choice = std::getenv("CTXPOOL_GEMM");
    return sgemm_avx512_available() && !(choice != nullptr && std::strcmp(choice, "blas") == 0);
  }();
  return own;
}

}  // namespace

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_own_sgemm()) return sgemm_avx512(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  }
#ifdef CTXPOOL_HAVE_BLAS
  const auto TA = ta ? CblasTrans : CblasNoTrans;
  const auto TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, 1.0, A, lda, B, ldb, accumulate ? 1.0 : 0.0, C, ldc);
  }
#else
  gemm_fallback(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
#endif
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                           int64_t, bool);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                            double*, int64_t, bool);

// Reached through the kernel table only (add_matmul_kernels at the end).
namespace {

// a [..., M, K] and b [..., K, N] (batch dims broadcast, possibly stride 0) -> out [..., M, N].
void matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t nd = out.dim();
  const int64_t M = out.sizes()[nd - 2], N = out.sizes()[nd - 1], K = a.sizes()[nd - 1];
  const Shape batch(out.sizes().begin(), out.sizes().end() - 2);
  const int64_t nbatch = shape_numel(batch);
  if (out.numel() == 0) return;
  if (K == 0) return kernels(kCPU).fill(out, 0.0);

  const GemmLayout la = gemm_layout(M, K, a.strides()[nd - 2], a.strides()[nd - 1]);
  const GemmLayout lb = gemm_layout(K, N, b.strides()[nd - 2], b.strides()[nd - 1]);
  CTXPOOL_CHECK(la.ok && lb.ok, "matmul kernel: operands must have a unit stride in one of the "
                "last two dims (the op makes them contiguous otherwise)");

  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "matmul", [&] {
    using T = scalar_t;
    const T* ap = a.data_ptr<T>();
    const T* bp = b.data_ptr<T>();
    T* op = out.data_ptr<T>();
    auto one = [&](int64_t bi) {
      int64_t oa = 0, ob = 0, rem = bi;
      for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
        const int64_t i = rem % batch[d];
        rem /= batch[d];
        oa += i * a.strides()[d];
        ob += i * b.strides()[d];
      }
      gemm<T>(la.transposed, lb.transposed, M, N, K, ap + oa, la.ld, bp + ob, lb.ld,
              op + bi * M * N, N);
    };
    // Many small matrices (attention heads): one thread per matrix. Few large ones: BLAS threads.
    if (nbatch >= get_num_threads() && M * N * K < (1 << 21)) {
      parallel_for(0, nbatch, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t bi = b0; bi < b1; ++bi) one(bi);
      });
    } else {
      for (int64_t bi = 0; bi < nbatch; ++bi) one(bi);
    }
  });
}

}  // namespace

void add_matmul_kernels(Kernels& k) {
  k.matmul = matmul;
}

}  // namespace ctxpool::cpu
