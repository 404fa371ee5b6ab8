#include "nn/optim/adamw.h"

#include <cmath>

#include "core/parallel.h"

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
  const double b1 = options_.beta1, b2 = options_.beta2;
  for_each_param([&](size_t gi, size_t i, Tensor& p, const Tensor& grad) {
    const double t = static_cast<double>(++steps_[gi][i]);
    const double correction1 = 1.0 - std::pow(b1, t);
    const double correction2 = 1.0 - std::pow(b2, t);
    const double lr = groups_[gi].lr, wd = groups_[gi].weight_decay;
    Tensor& m = exp_avg_[gi][i];
    Tensor& v = exp_avg_sq_[gi][i];
    if (!m.defined()) {
      m = zeros(p.sizes(), p.dtype());
      v = zeros(p.sizes(), p.dtype());
    }
    CTXPOOL_DISPATCH_FLOAT(p.dtype(), "AdamW", [&] {
      using T = scalar_t;
      T* w = p.data_ptr<T>();
      const T* g = grad.data_ptr<T>();
      T* mp = m.data_ptr<T>();
      T* vp = v.data_ptr<T>();
      const T decay = static_cast<T>(1.0 - lr * wd);
      const T step_size = static_cast<T>(lr / correction1);
      const T inv_sqrt_c2 = static_cast<T>(1.0 / std::sqrt(correction2));
      const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), teps = static_cast<T>(options_.eps);
      parallel_for(0, p.numel(), 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t j = i0; j < i1; ++j) {
          w[j] *= decay;
          mp[j] = tb1 * mp[j] + (T(1) - tb1) * g[j];
          vp[j] = tb2 * vp[j] + (T(1) - tb2) * g[j] * g[j];
          w[j] -= step_size * mp[j] / (std::sqrt(vp[j]) * inv_sqrt_c2 + teps);
        }
      });
    });
    p.bump_version();
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
