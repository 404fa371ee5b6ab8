#include "nn/optim/adamw.h"

#include "ops/ops.h"

namespace ctxpool::nn::optim {

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : AdamW(std::vector<ParamGroup>{ParamGroup{std::move(params), o.lr, o.weight_decay}}, o) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o) : Optimizer(std::move(groups)), options_(o) {
  CTXPOOL_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps >= 0,
                "AdamW: need 0 <= beta < 1 and eps >= 0, got betas (", o.beta1, ", ", o.beta2, "), eps ", o.eps);
  for (const ParamGroup& g : groups_) {
    exp_avg_.emplace_back(g.params.size());
    exp_avg_sq_.emplace_back(g.params.size());
    steps_.emplace_back(g.params.size(), 0);
  }
}

void AdamW::step() {
  ++step_count_;
  for_each_param([&](size_t gi, size_t i, Tensor& p, const Tensor& grad) {
    Tensor& m = exp_avg_[gi][i];
    Tensor& v = exp_avg_sq_[gi][i];
    if (!m.defined()) {
      m = zeros_like(p);  // on the parameter's device
      v = zeros_like(p);
    }
    ops::AdamWUpdate u;
    u.lr = groups_[gi].lr;
    u.weight_decay = groups_[gi].weight_decay;
    u.beta1 = options_.beta1;
    u.beta2 = options_.beta2;
    u.eps = options_.eps;
    u.step = ++steps_[gi][i];
    ops::adamw_update_(p, grad, m, v, u);
  });
}

std::map<std::string, Tensor> AdamW::state_tensors() const {
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < exp_avg_.size(); ++g) {
    for (size_t i = 0; i < exp_avg_[g].size(); ++i) {
      if (!exp_avg_[g][i].defined()) continue;
      out[key(g, i, "exp_avg")] = exp_avg_[g][i];
      out[key(g, i, "exp_avg_sq")] = exp_avg_sq_[g][i];
      out[key(g, i, "step")] = scalar_tensor(static_cast<double>(steps_[g][i]), kInt64);
    }
  }
  return out;
}

void AdamW::load_state_tensors(const std::map<std::string, Tensor>& state) {
  for (size_t g = 0; g < exp_avg_.size(); ++g) {
    for (size_t i = 0; i < exp_avg_[g].size(); ++i) {
      if (!state.count(key(g, i, "exp_avg"))) continue;
      load_one(state, key(g, i, "exp_avg"), groups_[g].params[i], exp_avg_[g][i]);
      load_one(state, key(g, i, "exp_avg_sq"), groups_[g].params[i], exp_avg_sq_[g][i]);
      auto step = state.find(key(g, i, "step"));
      CTXPOOL_CHECK(step != state.end() && step->second.numel() == 1, "optimizer: state '", key(g, i, "step"),
                    "' is missing from the checkpoint");
      steps_[g][i] = static_cast<int64_t>(step->second.item());
    }
  }
}

}  // namespace ctxpool::nn::optim
