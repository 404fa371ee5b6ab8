// How ops attach themselves to the graph. An op computes its output, then calls
//
//   return record("mul", {a, b}, out, [sa, sb](const Tensor& g, const LambdaNode& node) {
//     return std::vector<Tensor>{g * sb.unpack("mul"), g * sa.unpack("mul")};
//   });
//
// record() attaches a LambdaNode only when grad mode is on and some input requires grad; otherwise
// it returns `out` untouched and the lambda (with what it captured) is dropped at once.
#pragma once
#include <functional>
#include <vector>

#include "autograd/node.h"
#include "autograd/saved_tensor.h"

namespace ctxpool::autograd {

class LambdaNode : public Node {
 public:
  // grad: the gradient w.r.t. the node's (single) output. Returns one gradient per input, in the
  // order the inputs were given to record() (undefined where an input needs none).
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad, const LambdaNode& node)>;

  LambdaNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  void release_variables() override;

  // The op's output, when record() was asked to save it (save_output = true).
  Tensor saved_output() const { return output_.unpack(name_.c_str()); }
  void save_output(const Tensor& out);

 private:
  BackwardFn fn_;
  SavedTensor output_;
  bool released_ = false;
};

Tensor record(const char* name, const std::vector<Tensor>& inputs, Tensor output,
              LambdaNode::BackwardFn backward, bool save_output = false);

// CTXPOOL_DEBUG level from the environment (0 when unset): 1 logs each op, 2 also backward nodes.
int debug_level();

}  // namespace ctxpool::autograd
