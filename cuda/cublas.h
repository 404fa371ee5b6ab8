// cuBLAS for .cu files: one handle per device, created on first use and bound to current_stream(),
// and status checking that names the call.
#pragma once
#include <cublas_v2.h>

#include "core/error.h"

namespace ctxpool::cuda {

inline void check_cublas(cublasStatus_t status, const char* what) {
  CTXPOOL_CHECK(status == CUBLAS_STATUS_SUCCESS, "cublas: ", what, " failed: ", cublasGetStatusName(status), " (",
                cublasGetStatusString(status), ")");
}

// The handle for `device` (made current by the caller). Its math mode is CUBLAS_DEFAULT_MATH: float32
// stays float32 (no TF32) unless set_allow_tf32(true).
cublasHandle_t cublas_handle(int device);

// TF32 tensor cores for float32 matmuls (about 10 mantissa bits per product; off by default so that
// results match the CPU to float32 tolerance).
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace ctxpool::cuda
