// CUDA runtime: device query, the device allocator (registered with core), host<->device copies.
// No kernels for ops here: those live in ops/cuda/ and fill the CUDA kernel table (ops/kernels.h).
#include <cuda_runtime.h>

#include <sstream>

#include "core/allocator.h"
#include "cuda/check.h"
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

namespace {

// Plain cudaMalloc/cudaFree for now; a caching allocator replaces it with the CUDA kernels.
class CudaAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes, int device) override {
    if (nbytes == 0) return nullptr;
    check(cudaSetDevice(device), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMalloc(&p, nbytes), "cudaMalloc");
    return p;
  }
  void deallocate(void* ptr, size_t, int device) override {
    if (!ptr) return;
    cudaSetDevice(device);
    cudaFree(ptr);  // no throw from a destructor path
  }
  void copy_from_host(void* dst, const void* src, size_t n, int device) override {
    if (!n) return;
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
  }
  void copy_to_host(void* dst, const void* src, size_t n, int device) override {
    if (!n) return;
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
  }
};

}  // namespace

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
  if (device_count() <= index) return "no CUDA device";
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  std::ostringstream os;
  os << prop.name << " (sm_" << prop.major << prop.minor << ", "
     << (prop.totalGlobalMem >> 30) << " GiB)";
  return os.str();
}

void register_backend() {
  static CudaAllocator allocator;
  register_allocator(DeviceType::CUDA, &allocator);
}

}  // namespace ctxpool::cuda
