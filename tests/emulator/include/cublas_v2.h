// The CUDA emulator's stand-in for the toolkit's <cublas_v2.h>: the types and values ctxpool's
// cuda/cublas.h uses. The functions live in the emulator's libcublas.so (tests/emulator/cublas.cpp),
// which ctxpool opens with dlopen exactly as it opens the real one.
#pragma once
#include "cuda_runtime.h"

#define CUBLAS_VER_MAJOR 13

struct cublasContext;
typedef cublasContext* cublasHandle_t;

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
