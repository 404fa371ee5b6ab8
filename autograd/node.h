// The autograd graph. Each op that needs a gradient records a Node: its backward function, what it
// saved, and one Edge per input pointing at the Node that produced that input (or at the input's
// AccumulateGrad, for a leaf). backward() walks these edges from the loss to the leaves.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ctxpool::autograd {

class Node;

// "The gradient for this input goes to input slot `input_nr` of `node`". An empty edge means the
// input does not need a gradient.
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

// What a gradient arriving for one of a node's outputs must look like.
struct OutputMeta {
  Shape sizes;
  DType dtype = DType::Float32;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  explicit Node(std::string name);
  // Frees long chains iteratively, so dropping a 100,000-op graph cannot overflow the stack.
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }

  // Gradients w.r.t. this node's outputs in; gradients w.r.t. its inputs out, one per next edge
  // (an undefined Tensor means "no gradient").
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  // Drops saved tensors after backward (unless retain_graph): frees the graph's memory.
  virtual void release_variables() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  void set_next_edges(std::vector<Edge> edges) { next_edges_ = std::move(edges); }
  bool needs_input_grad(size_t i) const { return i < next_edges_.size() && next_edges_[i].valid(); }

  // Registers an output; returns its output_nr.
  uint32_t add_output(const Tensor& output);
  size_t num_outputs() const { return outputs_.size(); }
  const OutputMeta& output_meta(size_t i) const { return outputs_.at(i); }

 protected:
  std::string name_;
  uint64_t sequence_nr_;
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> outputs_;
};

// The sink for a leaf tensor that requires grad: adds the incoming gradient into leaf.grad().
// It refers to the leaf weakly: a leaf nobody holds needs no gradient. (Under create_graph a cycle
// leaf -> grad -> graph -> saved leaf remains, as in PyTorch; see docs/autograd.md.)
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// Where the gradient of `t` must be sent: its grad_fn, its leaf accumulator, or nowhere.
Edge gradient_edge(const Tensor& t);
std::vector<Edge> collect_edges(const std::vector<Tensor>& inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

}  // namespace ctxpool::autograd
