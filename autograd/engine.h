// The backward engine: from the roots' gradients to the leaves, iteratively (no recursion).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace ctxpool::autograd {

// Accumulates d(roots)/d(leaf) * grad_roots into every leaf's .grad(). A root with no grad given
// must have one element (its gradient is 1). retain_graph keeps saved tensors for another backward;
// create_graph records the backward pass itself, for second derivatives.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots = {},
              bool retain_graph = false, bool create_graph = false);

// Returns d(outputs)/d(inputs) * grad_outputs without touching any .grad() (like torch.autograd.grad).
// An input the outputs do not depend on gets an undefined Tensor when allow_unused, else an error.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = false);

}  // namespace ctxpool::autograd
