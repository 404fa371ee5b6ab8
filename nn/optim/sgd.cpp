#include "nn/optim/sgd.h"

#include "core/parallel.h"

namespace ctxpool::nn::optim {

SGD::SGD(std::vector<Tensor> params, const SGDOptions& o)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), o.lr, o.weight_decay}}, o) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& o) : Optimizer(std::move(groups)), options_(o) {
  CTXPOOL_CHECK(o.momentum >= 0 && (!o.nesterov || o.momentum > 0), "SGD: nesterov needs momentum > 0, got ",
                o.momentum);
  for (const ParamGroup& g : groups_) momentum_.emplace_back(g.params.size());
}

void SGD::step() {
  ++step_count_;
  for_each_param([&](size_t gi, size_t i, Tensor& p, const Tensor& grad) {
    const double lr = groups_[gi].lr, wd = groups_[gi].weight_decay, mu = options_.momentum;
    Tensor& buf = momentum_[gi][i];
    const bool first = !buf.defined();
    if (mu != 0 && first) buf = zeros(p.sizes(), p.dtype());
    CTXPOOL_DISPATCH_FLOAT(p.dtype(), "SGD", [&] {
      using T = scalar_t;
      T* w = p.data_ptr<T>();
      const T* gp = grad.data_ptr<T>();
      T* b = mu != 0 ? buf.data_ptr<T>() : nullptr;
      parallel_for(0, p.numel(), 16384, [&](int64_t i0, int64_t i1) {
        for (int64_t j = i0; j < i1; ++j) {
          T g = gp[j] + static_cast<T>(wd) * w[j];
          if (b) {
            b[j] = first ? g : static_cast<T>(mu) * b[j] + g;
            g = options_.nesterov ? g + static_cast<T>(mu) * b[j] : b[j];
          }
          w[j] -= static_cast<T>(lr) * g;
        }
      });
    });
    p.bump_version();
  });
}

std::map<std::string, Tensor> SGD::state_tensors() const {
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < momentum_.size(); ++g)
    for (size_t i = 0; i < momentum_[g].size(); ++i)
      if (momentum_[g][i].defined()) out[key(g, i, "momentum")] = momentum_[g][i];
  return out;
}

void SGD::load_state_tensors(const std::map<std::string, Tensor>& state) {
  for (size_t g = 0; g < momentum_.size(); ++g)
    for (size_t i = 0; i < momentum_[g].size(); ++i)
      if (state.count(key(g, i, "momentum")))
        load_one(state, key(g, i, "momentum"), groups_[g].params[i], momentum_[g][i]);
}

}  // namespace ctxpool::nn::optim
