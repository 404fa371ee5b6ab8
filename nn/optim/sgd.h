// SGD with momentum, Nesterov momentum and (L2, coupled) weight decay, as torch.optim.SGD:
//   g = grad + wd * p;  b = momentum * b + g (b = g on the first step);
//   p -= lr * (nesterov ? g + momentum * b : b)
#pragma once
#include "nn/optim/optimizer.h"

namespace ctxpool::nn::optim {

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options);
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  void step() override;
  std::map<std::string, Tensor> state_tensors() const override;
  void load_state_tensors(const std::map<std::string, Tensor>& state) override;

 private:
  SGDOptions options_;
  std::vector<std::vector<Tensor>> momentum_;  // [group][index], undefined until first used
};

}  // namespace ctxpool::nn::optim
