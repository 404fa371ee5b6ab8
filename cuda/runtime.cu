// CUDA runtime: device query, the current device and stream, and the allocator's registration with
// core. No kernels for ops here: those live in ops/cuda/ and fill the CUDA kernel table.
#include <cuda_runtime.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "core/allocator.h"
#include "cuda/caching_allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

bool built_with_cuda() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

std::string device_description(int index) {
  if (index < 0 || device_count() <= index) return "no CUDA device";
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  std::ostringstream os;
  os << prop.name << " (sm_" << prop.major << prop.minor << ", " << (prop.totalGlobalMem >> 30) << " GiB)";
  return os.str();
}

int compute_capability(int index) {
  if (index < 0 || device_count() <= index) return 0;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  return 10 * prop.major + prop.minor;
}

cudaStream_t current_stream() { return cudaStreamLegacy; }

void set_device(int device) {
  int current = -1;
  check(cudaGetDevice(&current), "cudaGetDevice");
  if (current != device) check(cudaSetDevice(device), "cudaSetDevice");
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* env = std::getenv("CTXPOOL_CUDA_SYNC");
    return env != nullptr && std::string(env) == "1";
  }();
  return on;
}

}  // namespace ctxpool::cuda

namespace ctxpool {
void register_cuda_allocator() { register_allocator(DeviceType::CUDA, &cuda::caching_allocator()); }
}  // namespace ctxpool
