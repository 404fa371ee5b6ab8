// The CUDA backend's entry points, with the same shape as ops/cpu/kernels.h. In a build without the
// CUDA toolkit (CTXPOOL_CUDA=OFF or not found) these exist too: device_count() returns 0 and the
// kernels throw "built without CUDA".
#pragma once
#include <string>

#include "core/tensor.h"

namespace ctxpool::cuda {

// Whether this build compiled the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices; 0 without a driver or device (never throws).
int device_count();
// "NVIDIA H200 (sm_90, 139 GiB)" or an explanation of why there is none.
std::string device_description(int index = 0);
// Registers the CUDA allocator with core (called once at start-up by ops/).
void register_backend();

// dst (contiguous, on a CUDA device) = value.
void fill(const Tensor& dst, double value);

}  // namespace ctxpool::cuda
