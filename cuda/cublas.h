// cuBLAS for .cu files: loaded on first use, one handle per device bound to current_stream(), and
// status checking that names the call.
//
// The library is opened with dlopen when the first CUDA matmul runs, not linked: cuBLAS registers its
// kernels when it loads, which costs resident memory and start-up time in every process,
// including the CPU-only runs that never touch a GPU (~215 MiB measured here).
#pragma once
#include <cublas_v2.h>

#include "core/error.h"
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

// The entry points ctxpool uses, resolved from the loaded library (an error naming the library and
// dlerror() when it cannot be opened).
struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
  cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                          const float*, const float*, int, long long, const float*, int, long long,
                                          const float*, float*, int, long long, int);
  cublasStatus_t (*dgemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                          const double*, const double*, int, long long, const double*, int,
                                          long long, const double*, double*, int, long long, int);
  const char* (*status_name)(cublasStatus_t);
  const char* (*status_string)(cublasStatus_t);
};
const CublasApi& cublas();

inline void check_cublas(cublasStatus_t status, const char* what) {
  CTXPOOL_CHECK(status == CUBLAS_STATUS_SUCCESS, "cublas: ", what, " failed: ", cublas().status_name(status), " (",
                cublas().status_string(status), ")");
}

// The handle for `device` (made current by the caller). Its math mode is CUBLAS_DEFAULT_MATH: float32
// stays float32 (no TF32) unless set_allow_tf32(true).
cublasHandle_t cublas_handle(int device);

// set_allow_tf32() / allow_tf32() (TF32 for float32 matmuls and convolutions) are in cuda/cuda_api.h.

}  // namespace ctxpool::cuda
