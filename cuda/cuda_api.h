// The CUDA runtime's entry points (device query, allocator registration). In a build without the
// CUDA toolkit (CTXPOOL_CUDA=OFF or not found) these exist too (cuda/stub.cpp): device_count()
// returns 0. Kernels for ops are not here: they fill the CUDA kernel table (ops/kernels.h, ops/cuda/).
#pragma once
#include <string>

namespace ctxpool::cuda {

// Whether this build compiled the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices; 0 without a driver or device (never throws).
int device_count();
// "NVIDIA H200 (sm_90, 139 GiB)" or an explanation of why there is none.
std::string device_description(int index = 0);
// Registers the CUDA allocator with core (called once at start-up by ops/).
void register_backend();

}  // namespace ctxpool::cuda
