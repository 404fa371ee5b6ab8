// The CUDA emulator's cuBLAS: the entry points ctxpool resolves from libcublas.so.13 (cuda/cublas.cu),
// built as a shared library of that name so that ctxpool's dlopen path is the one a GPU run takes.
// GEMMs are plain loops over column-major matrices with float (or double) accumulation; in CUBLAS_TF32_TENSOR_OP_MATH mode float inputs are first rounded to TF32 (10
// mantissa bits), so tests that expect TF32 to show can see it. Argument checks follow cuBLAS's
// documented CUBLAS_STATUS_INVALID_VALUE conditions.
#include <cstdint>
#include <cstring>

#include "cublas_v2.h"

struct cublasContext {
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

// Round to nearest even, keeping the top 10 of float's 23 mantissa bits (inf and NaN unchanged).
float to_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;
  const uint32_t drop = 13;
  const uint32_t half = 1u << (drop - 1);
  const uint32_t lsb = (bits >> drop) & 1u;
  bits = (bits + half - 1 + lsb) & ~((1u << drop) - 1);
  std::memcpy(&x, &bits, 4);
  return x;
}

template <typename T>
cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* alpha,
                    const T* A, int lda, long long stride_a, const T* B, int ldb, long long stride_b, const T* beta, T* C,
                    int ldc, long long stride_c, int batch) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto valid_op = [](cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; };
  if (!valid_op(ta) || !valid_op(tb)) return CUBLAS_STATUS_INVALID_VALUE;
  const bool a_t = ta != CUBLAS_OP_N, b_t = tb != CUBLAS_OP_N;
  const int a_rows = a_t ? k : m, b_rows = b_t ? n : k;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
      ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool tf32 = sizeof(T) == 4 && h->math == CUBLAS_TF32_TENSOR_OP_MATH;
  const auto in = [tf32](T v) -> T {
    if constexpr (sizeof(T) == 4) return tf32 ? to_tf32(v) : v;
    return v;
  };
  for (int p = 0; p < batch; ++p) {
    const T* a = A + p * stride_a;
    const T* b = B + p * stride_b;
    T* c = C + p * stride_c;
    for (int j = 0; j < n; ++j) {
      for (int i = 0; i < m; ++i) {
        T acc = 0;
        for (int l = 0; *alpha != T(0) && l < k; ++l) {  // alpha 0: A and B are not read (BLAS)
          const T x = in(a_t ? a[l + int64_t(i) * lda] : a[i + int64_t(l) * lda]);
          const T y = in(b_t ? b[j + int64_t(l) * ldb] : b[l + int64_t(j) * ldb]);
          acc += x * y;
        }
        T& out = c[i + int64_t(j) * ldc];
        out = *beta == T(0) ? *alpha * acc : *alpha * acc + *beta * out;  // beta 0: C is not read (cuBLAS)
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

// Handles come from a fixed pool: ctxpool keeps one per device for the life of the process, and a
// pool is not reported as a leak at exit.
cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  static cublasContext pool[64];
  static int used = 0;
  if (used == 64) return CUBLAS_STATUS_ALLOC_FAILED;
  *handle = &pool[used++];
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* A, int lda, long long sa,
                                         const float* B, int ldb, long long sb, const float* beta, float* C, int ldc,
                                         long long sc, int batch) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double* alpha, const double* A, int lda, long long sa,
                                         const double* B, int ldb, long long sb, const double* beta, double* C,
                                         int ldc, long long sc, int batch) {
  return gemm(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_INVALID_VALUE ? "an invalid value was used as an argument" : "emulated cuBLAS";
}

}  // extern "C"
