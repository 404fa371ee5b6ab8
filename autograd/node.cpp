#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"

namespace ctxpool::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(next_sequence_nr++) {}

Node::~Node() {
  // Dropping the last reference to a node would drop its inputs' nodes recursively, one stack frame
  // per op. Instead, take ownership of the edges here and free the chain in a loop: a node whose
  // only owner is this stack is emptied (edges and saved tensors moved out) before it dies.
  std::vector<std::shared_ptr<Node>> stack;
  for (auto& e : next_edges_)
    if (e.node) stack.push_back(std::move(e.node));
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {
      for (auto& e : n->next_edges_)
        if (e.node) stack.push_back(std::move(e.node));
      n->release_variables();
    }
  }
}

uint32_t Node::add_output(const Tensor& output) {
  outputs_.push_back(OutputMeta{output.sizes(), output.dtype(), output.device()});
  return static_cast<uint32_t>(outputs_.size() - 1);
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
    : Node("AccumulateGrad"), leaf_(leaf) {
  add_output(Tensor(leaf));
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grad_outputs) {
  Tensor g = std::move(grad_outputs.at(0));
  // Without create_graph the accumulated gradient is a plain value; with it, it keeps its graph so
  // that a second backward can differentiate through it.
  std::shared_ptr<TensorImpl> impl = leaf_.lock();
  if (!g.defined() || !impl) return {};
  Tensor leaf(impl);
  Tensor old = leaf.grad();
  if (old.defined()) {
    leaf.set_grad(old.add(g));
  } else if (GradMode::is_enabled()) {
    leaf.set_grad(g.clone());  // create_graph: keep the graph, but own the memory
  } else {
    // A gradient buffer may be shared (add's backward passes g through to both inputs): own a copy
    // unless nothing else holds it, so in-place updates of one .grad() never touch another.
    const bool sole_owner = g.impl().use_count() == 1 && g.impl()->storage.use_count() == 1 &&
                            g.is_contiguous();
    leaf.set_grad(sole_owner ? g.detach() : g.detach().clone());
  }
  if (!impl->post_accumulate_grad_hooks.empty()) {
    const auto hooks = impl->post_accumulate_grad_hooks;  // (a hook may remove hooks)
    for (const auto& [id, fn] : hooks) fn();
  }
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return Edge{};
  if (t.grad_fn()) return Edge{t.grad_fn(), t.output_nr()};
  TensorImpl* impl = t.get();
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl());
    impl->grad_accumulator = acc;
  }
  return Edge{acc, 0};
}

std::vector<Edge> collect_edges(const std::vector<Tensor>& inputs) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
  return edges;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

}  // namespace ctxpool::autograd
