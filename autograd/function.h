// User-defined differentiable functions, like PyTorch's autograd.Function:
//
//   struct Cube : autograd::Function<Cube> {
//     static std::vector<Tensor> forward(AutogradContext& ctx, const std::vector<Tensor>& in) {
//       ctx.save_for_backward({in[0]});
//       return {in[0] * in[0] * in[0]};
//     }
//     static std::vector<Tensor> backward(AutogradContext& ctx, const std::vector<Tensor>& grad) {
//       Tensor x = ctx.get_saved_variables()[0];
//       return {grad[0] * 3.0 * x * x};
//     }
//   };
//   Tensor y = Cube::apply({x})[0];
//
// forward runs without recording a graph; backward returns one gradient per input (undefined for
// inputs that need none). If backward is written with differentiable ops, double backward works.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/saved_tensor.h"

namespace ctxpool::autograd {

class AutogradContext {
 public:
  // Tensors the backward needs (inputs or outputs of forward). Checked against in-place changes.
  void save_for_backward(std::vector<Tensor> tensors) { to_save_ = std::move(tensors); }
  std::vector<Tensor> get_saved_variables() const;
  bool needs_input_grad(size_t i) const { return i < needs_.size() && needs_[i]; }
  // Non-tensor values the backward needs (sizes, flags, scalars).
  std::map<std::string, double> saved_data;

 private:
  template <class T> friend struct Function;
  template <class T> friend class FunctionNode;
  std::vector<Tensor> to_save_;
  std::vector<SavedTensor> saved_;
  std::vector<bool> needs_;
  std::string name_;
};

template <class T>
class FunctionNode : public Node {
 public:
  explicit FunctionNode(std::string name) : Node(std::move(name)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override {
    CTXPOOL_CHECK(!released_, name_, ": trying to backward through the graph a second time; pass "
                  "retain_graph=true to the first backward() if you need to call it twice");
    std::vector<Tensor> grads = T::backward(ctx_, grad_outputs);
    CTXPOOL_CHECK(grads.size() == next_edges_.size(), name_, "::backward returned ", grads.size(),
                  " gradients but forward had ", next_edges_.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].defined() || i >= input_sizes_.size()) continue;
      CTXPOOL_CHECK(grads[i].sizes() == input_sizes_[i], name_, "::backward returned a gradient of ",
                    "shape ", grads[i].sizes(), " for input ", i, " of shape ", input_sizes_[i]);
    }
    return grads;
  }
  void release_variables() override {
    ctx_.saved_.clear();
    released_ = true;
  }
  AutogradContext ctx_;
  std::vector<Shape> input_sizes_;

 private:
  bool released_ = false;
};

template <class T>
struct Function {
  static std::vector<Tensor> apply(const std::vector<Tensor>& inputs) {
    std::string name = typeid(T).name();
    if constexpr (requires { T::name; }) name = T::name;  // optional: static constexpr name
    auto node = std::make_shared<FunctionNode<T>>(name);
    AutogradContext& ctx = node->ctx_;
    for (const Tensor& t : inputs) {
      ctx.needs_.push_back(t.defined() && t.requires_grad());
      node->input_sizes_.push_back(t.defined() ? t.sizes() : Shape{});
    }
    std::vector<Tensor> outputs;
    {
      NoGradGuard no_grad;
      outputs = T::forward(ctx, inputs);
    }
    const bool record = GradMode::is_enabled() && any_requires_grad(inputs);
    if (record) {
      node->set_next_edges(collect_edges(inputs));
      for (Tensor& out : outputs) {
        // A forward that returns an input as is: give the output its own handle.
        for (const Tensor& in : inputs)
          if (out.is_same(in)) out = out.detach();
        const uint32_t nr = node->add_output(out);
        out.get()->requires_grad = true;
        out.get()->grad_fn = node;
        out.get()->output_nr = nr;
      }
    }
    // Saved tensors: outputs are kept without their grad_fn (no cycle), re-attached on unpack.
    for (const Tensor& s : ctx.to_save_) {
      bool is_output = false;
      for (const Tensor& out : outputs) is_output = is_output || s.is_same(out);
      ctx.saved_.push_back(is_output && record ? SavedTensor(s, node) : SavedTensor(s));
    }
    ctx.to_save_.clear();
    return outputs;
  }
};

inline std::vector<Tensor> AutogradContext::get_saved_variables() const {
  std::vector<Tensor> out;
  for (const SavedTensor& s : saved_) out.push_back(s.unpack("custom function"));
  return out;
}

}  // namespace ctxpool::autograd
