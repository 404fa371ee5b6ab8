// Optimizer updates on the CPU: one pass over each parameter, split across threads.
#include <cmath>

#include "core/parallel.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_optim_kernels at the end).
namespace {

constexpr int64_t kGrain = 16384;

void adamw_update(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, const ops::AdamWUpdate& u) {
  const double correction1 = 1.0 - std::pow(u.beta1, static_cast<double>(u.step));
  const double correction2 = 1.0 - std::pow(u.beta2, static_cast<double>(u.step));
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "adamw_update_", [&] {
    using T = scalar_t;
    T* w = p.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* mp = m.data_ptr<T>();
    T* vp = v.data_ptr<T>();
    const T decay = static_cast<T>(1.0 - u.lr * u.weight_decay);
    const T step_size = static_cast<T>(u.lr / correction1);
    const T inv_sqrt_c2 = static_cast<T>(1.0 / std::sqrt(correction2));
    const T b1 = static_cast<T>(u.beta1), b2 = static_cast<T>(u.beta2), eps = static_cast<T>(u.eps);
    parallel_for(0, p.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t j = i0; j < i1; ++j) {
        w[j] *= decay;
        mp[j] = b1 * mp[j] + (T(1) - b1) * g[j];
        vp[j] = b2 * vp[j] + (T(1) - b2) * g[j] * g[j];
        w[j] -= step_size * mp[j] / (std::sqrt(vp[j]) * inv_sqrt_c2 + eps);
      }
    });
  });
}

void sgd_update(const Tensor& p, const Tensor& grad, const Tensor& buf, const ops::SGDUpdate& u) {
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "sgd_update_", [&] {
    using T = scalar_t;
    T* w = p.data_ptr<T>();
    const T* gp = grad.data_ptr<T>();
    T* b = buf.defined() ? buf.data_ptr<T>() : nullptr;
    const T lr = static_cast<T>(u.lr), wd = static_cast<T>(u.weight_decay), mu = static_cast<T>(u.momentum);
    parallel_for(0, p.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t j = i0; j < i1; ++j) {
        T g = gp[j] + wd * w[j];
        if (b) {
          b[j] = u.first ? g : mu * b[j] + g;
          g = u.nesterov ? g + mu * b[j] : b[j];
        }
        w[j] -= lr * g;
      }
    });
  });
}

}  // namespace

void add_optim_kernels(Kernels& k) {
  k.adamw_update = adamw_update;
  k.sgd_update = sgd_update;
}

}  // namespace ctxpool::cpu
