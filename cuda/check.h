// CUDA status checking for .cu files (it needs the toolkit's headers; C++ files include only
// cuda/cuda_api.h). Every CUDA call's status goes through check(), so a failure is a ctxpool::Error
// that names the call, never a crash or a silently wrong result.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace ctxpool::cuda {

// "cuda: cudaMalloc failed: out of memory".
inline void check(cudaError_t err, const char* what) {
  CTXPOOL_CHECK(err == cudaSuccess, "cuda: ", what, " failed: ", cudaGetErrorString(err));
}

}  // namespace ctxpool::cuda
