#include "nn/optim/optimizer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ctxpool::nn::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (const ParamGroup& g : groups_) {
    for (const Tensor& p : g.params) {
      CTXPOOL_CHECK(p.defined() && p.is_leaf() && p.requires_grad(),
                    "optimizer: every parameter must be a leaf that requires grad");
    }
  }
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.set_grad(Tensor());
}

void Optimizer::set_lr(double lr) {
  for (ParamGroup& g : groups_) g.lr = lr;
}

std::string Optimizer::key(size_t group, size_t index, const char* what) {
  return std::to_string(group) + "." + std::to_string(index) + "." + what;
}

void Optimizer::load_one(const std::map<std::string, Tensor>& state, const std::string& name, const Tensor& param,
                         Tensor& into) {
  auto it = state.find(name);
  CTXPOOL_CHECK(it != state.end(), "optimizer: state '", name, "' is missing from the checkpoint");
  CTXPOOL_CHECK(it->second.sizes() == param.sizes() && it->second.dtype() == param.dtype(), "optimizer: state '",
                name, "' is ", it->second.sizes(), " ", it->second.dtype(), " but its parameter is ", param.sizes(),
                " ", param.dtype());
  into = it->second.to(param.device()).contiguous().clone().detach();  // checkpoints hold CPU tensors
}

double grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  const profile::PhaseScope phase(profile::Phase::Optimizer);  // for CTXPOOL_PROFILE
  Tensor total;  // summed where the gradients live, read once (one wait for a device, not one per parameter)
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor g64 = g.to(kFloat64);
    const Tensor sq = ops::sum(ops::mul(g64, g64));
    total = total.defined() ? ops::add(total, sq) : sq;
  }
  return total.defined() ? std::sqrt(total.item()) : 0.0;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  const profile::PhaseScope phase(profile::Phase::Optimizer);  // for CTXPOOL_PROFILE
  const double norm = grad_norm(params);
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1.0) {
    NoGradGuard no_grad;
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(scale);
    }
  }
  return norm;
}

}  // namespace ctxpool::nn::optim
