#include "nn/optim/sgd.h"

#include "ops/ops.h"

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
    Tensor& buf = momentum_[gi][i];
    ops::SGDUpdate u;
    u.lr = groups_[gi].lr;
    u.weight_decay = groups_[gi].weight_decay;
    u.momentum = options_.momentum;
    u.nesterov = options_.nesterov;
    u.first = !buf.defined();
    if (u.momentum != 0 && u.first) buf = zeros_like(p);  // on the parameter's device
    ops::sgd_update_(p, grad, buf, u);
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
