// CUDA runtime: device query, the device allocator (registered with core), host<->device copies,
// and the first kernel (fill). Kernels for the ops follow the layout of ops/cpu/.
#include <cuda_runtime.h>

#include <cstdint>
#include <sstream>

#include "core/allocator.h"
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

namespace {

void check(cudaError_t err, const char* what) {
  CTXPOOL_CHECK(err == cudaSuccess, "cuda: ", what, " failed: ", cudaGetErrorString(err));
}

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

// out [n] = value
template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

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

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  check(cudaSetDevice(dst.device().index), "cudaSetDevice");
  const int threads = 256;
  const int blocks = static_cast<int>((n + threads - 1) / threads);
  CTXPOOL_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    fill_kernel<scalar_t><<<blocks, threads>>>(static_cast<scalar_t*>(dst.raw_data()), n,
                                               static_cast<scalar_t>(value));
  });
  check(cudaGetLastError(), "fill kernel launch");
  check(cudaDeviceSynchronize(), "fill kernel");
}

}  // namespace ctxpool::cuda
