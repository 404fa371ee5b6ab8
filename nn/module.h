// Module: the base of every layer and model. It owns named parameters (leaves that require grad),
// buffers (state that is saved but not trained) and submodules, so that a whole model can list its
// parameters with dotted names ("blocks.0.attn.qkv.weight"), switch train/eval, and save/load.
#pragma once
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ctxpool::nn {

using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The single-tensor forward most layers have (Sequential chains it); others define their own.
  virtual Tensor forward(const Tensor& x);

  // Parameters in registration order, submodules' after the module's own.
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t num_parameters() const;

  // Every parameter and buffer by dotted name (copies of the handles: the data is shared).
  StateDict state_dict() const;
  // Copies values into the existing parameters and buffers. Errors list every missing and
  // unexpected key (unless strict is false) and any shape or dtype mismatch.
  void load_state_dict(const StateDict& state, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter and buffer to `device` in place (the tensors keep their identity, so the
  // layers' handles follow; gradients are dropped). Build the optimizer after moving the model.
  Module& to(Device device);

  const std::string& type_name() const { return type_name_; }
  // A tree of the modules with their parameter shapes, like PyTorch's print(model).
  void print(std::ostream& os, int indent = 0) const;

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_new_name(name);
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool buffers,
               std::vector<std::pair<std::string, Tensor>>& out) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace ctxpool::nn
