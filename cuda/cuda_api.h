// The CUDA runtime's entry points for C++ code (device query, memory statistics, the TF32 switch). In a build without the CUDA toolkit (CTXPOOL_CUDA=OFF or not found) these exist too
// (cuda/stub.cpp): device_count() returns 0 and the memory calls are clear errors. Kernels for ops are
// not here: they fill the CUDA kernel table (ops/kernels.h, ops/cuda/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ctxpool::cuda {

// Whether this build compiled the CUDA backend, and cuDNN's convolutions (cuda/cudnn.h) with it.
bool built_with_cuda();
bool built_with_cudnn();
// Number of usable CUDA devices; 0 without a driver or device (never throws).
int device_count();
// "NVIDIA H200 (sm_90, 139 GiB)" or an explanation of why there is none.
std::string device_description(int index = 0);
// 10 * major + minor (90 for an H100/H200, 80 for an A100); 0 when there is no such device.
int compute_capability(int index = 0);

// TF32 tensor cores for float32 matmuls (cuBLAS) and convolutions (cuDNN): about 10 mantissa bits per
// product, so off by default and results match the CPU to float32 tolerance. A config turns it on
// with train.allow_tf32. No effect in a build without CUDA.
void set_allow_tf32(bool allow);
bool allow_tf32();

// The caching allocator's counters for one device (cuda/caching_allocator.cu).
struct MemoryStats {
  size_t allocated = 0;       // bytes held by live tensors (rounded up to the allocator's block sizes)
  size_t reserved = 0;        // bytes obtained from cudaMalloc: allocated + cached for reuse
  size_t peak_allocated = 0;  // the largest `allocated` since start-up or reset_peak_memory_stats
  int64_t device_mallocs = 0; // cudaMalloc calls so far (flat in the steady state of a training loop)
  int64_t device_frees = 0;   // cudaFree calls so far (empty_cache, or out-of-memory retries)
};
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns every cached (free) block to the driver; live tensors are untouched.
void empty_cache();

}  // namespace ctxpool::cuda
