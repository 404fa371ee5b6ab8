// Elementwise CUDA kernels. So far fill, and copy between contiguous tensors of one shape and dtype
// (what clone needs); the other elementwise entries stay null, so their ops say "not implemented on
// cuda:0 yet".
#include <cstdint>

#include "cuda/check.h"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_elementwise_kernels at the end).
namespace {

// out [n] = value
template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

// dst contiguous [n] = value.
void fill(const Tensor& dst, double value) {
  CTXPOOL_CHECK(dst.is_contiguous(), "fill_: non-contiguous tensors on ", dst.device(), " are not supported yet");
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

// src, dst contiguous with the same sizes and dtype, on one device -> dst = src (device to device).
void copy(const Tensor& src, const Tensor& dst) {
  CTXPOOL_CHECK(src.is_contiguous() && dst.is_contiguous() && src.sizes() == dst.sizes() &&
                    src.dtype() == dst.dtype() && src.device() == dst.device(),
                "copy: on ", dst.device(), " only copies between contiguous tensors of one shape and dtype are "
                "implemented yet (source ", src.sizes(), " ", src.dtype(), " with strides ", src.strides(), " on ",
                src.device(), ", destination ", dst.sizes(), " ", dst.dtype(), " with strides ", dst.strides(),
                "); move them to the CPU with .cpu()");
  if (src.nbytes() == 0) return;
  check(cudaSetDevice(dst.device().index), "cudaSetDevice");
  check(cudaMemcpy(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToDevice),
        "cudaMemcpy device to device");
}

}  // namespace

void add_elementwise_kernels(Kernels& k) {
  k.fill = fill;
  k.copy = copy;
}

}  // namespace ctxpool::cuda
