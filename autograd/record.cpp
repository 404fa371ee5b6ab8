#include "autograd/record.h"

#include <cstdlib>
#include <iostream>

#include "autograd/grad_mode.h"

namespace ctxpool::autograd {

int debug_level() {
  static const int level = [] {
    const char* env = std::getenv("CTXPOOL_DEBUG");
    return env ? std::atoi(env) : 0;
  }();
  return level;
}

std::vector<Tensor> LambdaNode::apply(std::vector<Tensor>&& grad_outputs) {
  CTXPOOL_CHECK(!released_, name_, ": this part of the graph was already used by a backward, which released "
                "it; pass retain_graph=true to the first backward() if you need to call it twice");
  return fn_(grad_outputs.at(0), *this);
}

void LambdaNode::release_variables() {
  fn_ = nullptr;  // drops every tensor the backward lambda captured
  output_.reset();
  released_ = true;
}

void LambdaNode::save_output(const Tensor& out) {
  output_ = SavedTensor(out, shared_from_this());
}

Tensor record(const char* name, const std::vector<Tensor>& inputs, Tensor output,
              LambdaNode::BackwardFn backward, bool save_output) {
  if (debug_level() >= 1) {
    std::cerr << "[ctxpool] " << name << " ->" << ' ' << output.sizes() << ' ' << output.dtype()
              << ' ' << output.device() << '\n';
  }
  if (!GradMode::is_enabled() || !any_requires_grad(inputs)) return output;
  auto node = std::make_shared<LambdaNode>(name, std::move(backward));
  node->set_next_edges(collect_edges(inputs));
  node->add_output(output);
  TensorImpl* impl = output.get();
  impl->requires_grad = true;
  impl->grad_fn = node;
  impl->output_nr = 0;
  if (save_output) node->save_output(output);
  return output;
}

}  // namespace ctxpool::autograd
