// CUDA status checking and the current stream, for .cu files (they need the toolkit's headers; C++
// files include only cuda/cuda_api.h). Every CUDA call's status goes through check(), so a failure is
// a ctxpool::Error that names the call, never a crash or a silently wrong result.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace ctxpool::cuda {

// "cuda: cudaMalloc failed: out of memory".
inline void check(cudaError_t err, const char* what) {
  CTXPOOL_CHECK(err == cudaSuccess, "cuda: ", what, " failed: ", cudaGetErrorString(err));
}

// The stream every kernel launches on and every copy is ordered on (cuda/runtime.cu). Today the
// legacy default stream, so host code needs no extra synchronisation; one place to change when
// data-parallel training overlaps communication with compute.
cudaStream_t current_stream();

// Makes `device` current for the calls that follow (cudaSetDevice, checked; cheap when unchanged).
void set_device(int device);

// True when CTXPOOL_CUDA_SYNC=1: every kernel launch is followed by a stream synchronisation, so
// that a fault (an illegal address) is reported by the kernel that caused it, not by a later call.
// For debugging: it makes every op wait for the GPU.
bool sync_after_launch();

}  // namespace ctxpool::cuda
