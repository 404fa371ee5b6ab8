// Optimizer updates on the GPU: one fused elementwise kernel per parameter, the formulas of
// ops/cpu/optim.cpp (nvcc may fuse a multiply and an add, so the last bit can differ from the CPU).
#include <cmath>

#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_optim_kernels at the end).
namespace {

template <typename T>
__global__ void adamw_kernel(T* w, const T* g, T* m, T* v, int64_t n, T decay, T step_size, T inv_sqrt_c2, T b1, T b2,
                             T eps) {
  CTXPOOL_CUDA_LOOP(j, n) {
    const T gj = g[j];
    const T mj = b1 * m[j] + (T(1) - b1) * gj;
    const T vj = b2 * v[j] + (T(1) - b2) * gj * gj;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * decay - step_size * mj / (sqrt(vj) * inv_sqrt_c2 + eps);
  }
}

template <typename T>
__global__ void sgd_kernel(T* w, const T* gp, T* b, int64_t n, T lr, T wd, T mu, bool first, bool nesterov) {
  CTXPOOL_CUDA_LOOP(j, n) {
    T g = gp[j] + wd * w[j];
    if (b) {
      b[j] = first ? g : mu * b[j] + g;
      g = nesterov ? g + mu * b[j] : b[j];
    }
    w[j] -= lr * g;
  }
}

void adamw_update(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const ops::AdamWUpdate& u) {
  const int64_t n = p.numel();
  if (n == 0) return;
  set_device(p.device().index);
  const double correction1 = 1.0 - std::pow(u.beta1, static_cast<double>(u.step));
  const double correction2 = 1.0 - std::pow(u.beta2, static_cast<double>(u.step));
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "adamw_update_", [&] {
    using T = scalar_t;
    adamw_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<T>(p), data<T>(grad), data<T>(m), data<T>(v), n, static_cast<T>(1.0 - u.lr * u.weight_decay),
        static_cast<T>(u.lr / correction1), static_cast<T>(1.0 / std::sqrt(correction2)), static_cast<T>(u.beta1),
        static_cast<T>(u.beta2), static_cast<T>(u.eps));
  });
  check_launch("adamw_update_ kernel");
}

void sgd_update(const Tensor& p, const Tensor& grad, const Tensor& buf, const ops::SGDUpdate& u) {
  const int64_t n = p.numel();
  if (n == 0) return;
  set_device(p.device().index);
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "sgd_update_", [&] {
    using T = scalar_t;
    sgd_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        data<T>(p), data<T>(grad), buf.defined() ? data<T>(buf) : nullptr, n, static_cast<T>(u.lr),
        static_cast<T>(u.weight_decay), static_cast<T>(u.momentum), u.first, u.nesterov);
  });
  check_launch("sgd_update_ kernel");
}

}  // namespace

void add_optim_kernels(Kernels& k) {
  k.adamw_update = adamw_update;
  k.sgd_update = sgd_update;
}

}  // namespace ctxpool::cuda
