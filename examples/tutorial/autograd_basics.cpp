// Autograd in one page: build a small expression, run backward, read the gradients, and write the
// graph that backward walked as Graphviz dot (render with: dot -Tpng autograd_basics.dot -o g.png).
#include <cmath>
#include <fstream>
#include <iostream>

#include "autograd/graph_dot.h"
#include "ops/ops.h"

using namespace ctxpool;

int main() {
  // Two leaves that require grad: the "parameters".
  Tensor a = tensor({2.0, -1.0}, TensorOptions(kFloat64).requires_grad(true)).set_name("a");
  Tensor b = tensor({0.5, 3.0}, TensorOptions(kFloat64).requires_grad(true)).set_name("b");

  // f = sum(tanh(a * b) + a^2): every op records a node with its backward.
  Tensor c = a * b;
  Tensor f = (c.tanh() + a * a).sum();
  std::cout << "f = " << f << "\n";

  f.backward();  // df/da = b (1 - tanh^2(ab)) + 2a,  df/db = a (1 - tanh^2(ab))
  std::cout << "df/da = " << a.grad() << "\n";
  std::cout << "df/db = " << b.grad() << "\n";

  // Check one entry by hand.
  const double ab = 2.0 * 0.5, t = std::tanh(ab);
  const double want = 0.5 * (1 - t * t) + 2 * 2.0;
  std::cout << "by hand: df/da[0] = " << want << "\n";
  if (std::abs(a.grad().at({0}) - want) > 1e-12) return 1;

  // The graph behind a fresh copy of f (the first one was freed by backward).
  Tensor g = (ops::tanh(a * b) + a * a).sum();
  std::ofstream("autograd_basics.dot") << autograd::to_dot(g);
  std::cout << "wrote autograd_basics.dot\n";
  return 0;
}
