// autograd::to_dot(t): the graph behind a tensor as Graphviz dot, to look at what backward will do.
//   std::ofstream("graph.dot") << autograd::to_dot(loss);   then: dot -Tpng graph.dot -o graph.png
#pragma once
#include <string>

#include "core/tensor.h"

namespace ctxpool::autograd {

std::string to_dot(const Tensor& t);

}  // namespace ctxpool::autograd
