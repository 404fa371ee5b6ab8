// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, as torch.optim.AdamW:
//   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// One fused pass over each parameter. t counts the steps in which that parameter had a gradient
// (per parameter, as in PyTorch), so a parameter first used late gets a fresh bias correction.
#pragma once
#include "nn/optim/optimizer.h"

namespace ctxpool::nn::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options);
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
  void step() override;
  std::map<std::string, Tensor> state_tensors() const override;
  void load_state_tensors(const std::map<std::string, Tensor>& state) override;

 private:
  AdamWOptions options_;
  std::vector<std::vector<Tensor>> exp_avg_, exp_avg_sq_;  // [group][index]
  std::vector<std::vector<int64_t>> steps_;                // [group][index]
};

}  // namespace ctxpool::nn::optim
