// Optimizers update parameters in place from their .grad(), under NoGradGuard. Parameters come in
// groups with their own learning rate and weight decay (e.g. no decay on biases and norms).
// State (momentum, Adam moments) is exposed as named tensors so checkpoints can save and restore it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/profile.h"
#include "core/tensor.h"

namespace ctxpool::nn::optim {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (set to undefined, so the next backward writes it fresh).
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  // Sets the learning rate of every group (schedules call this each step).
  void set_lr(double lr);

  // Per-parameter state by name ("<group>.<index>.<what>") and the step count, for checkpoints.
  virtual std::map<std::string, Tensor> state_tensors() const = 0;
  virtual void load_state_tensors(const std::map<std::string, Tensor>& state) = 0;
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t n) { step_count_ = n; }

 protected:
  // Calls f(group, index, param, grad) for each parameter with a gradient; checks shapes.
  template <typename F> void for_each_param(const F& f);
  static std::string key(size_t group, size_t index, const char* what);
  // Copies state[name] into `into`, checking it matches `param` (shape, dtype).
  static void load_one(const std::map<std::string, Tensor>& state, const std::string& name, const Tensor& param,
                       Tensor& into);

  std::vector<ParamGroup> groups_;
  int64_t step_count_ = 0;
};

template <typename F>
void Optimizer::for_each_param(const F& f) {
  const profile::PhaseScope phase(profile::Phase::Optimizer);  // for CTXPOOL_PROFILE
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      Tensor& p = groups_[g].params[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      CTXPOOL_CHECK(grad.sizes() == p.sizes() && grad.dtype() == p.dtype(), "optimizer: gradient ",
                    grad.sizes(), " ", grad.dtype(), " does not match parameter ", p.sizes(), " ", p.dtype());
      // Any device: the update ops check that p, its gradient and its state share one.
      CTXPOOL_CHECK(p.is_contiguous(), "optimizer: parameters must be contiguous, got one of shape ", p.sizes(),
                    " with strides ", p.strides(), " on ", p.device());
      f(g, i, p, grad.contiguous());
    }
  }
}

// Rescales all gradients so that their global L2 norm is at most max_norm; returns the norm before
// clipping (computed in double).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
double grad_norm(const std::vector<Tensor>& params);

}  // namespace ctxpool::nn::optim
