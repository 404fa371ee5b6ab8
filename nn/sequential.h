// Sequential: runs its modules one after the other (each must have a single-tensor forward).
#pragma once
#include <memory>
#include <vector>

#include "nn/module.h"

namespace ctxpool::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
    for (auto& m : modules) push_back(std::move(m));
  }
  void push_back(std::shared_ptr<Module> m) {
    modules_.push_back(register_module(std::to_string(modules_.size()), std::move(m)));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (auto& m : modules_) h = m->forward(h);
    return h;
  }
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return modules_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Activations as modules, for Sequential.
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none") : Module("GELU"), approximate(std::move(approximate)) {}
  Tensor forward(const Tensor& x) override;
  std::string approximate;
};
class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};
class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace ctxpool::nn
