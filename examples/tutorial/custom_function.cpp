// A user-defined differentiable op with its own backward, like PyTorch's autograd.Function:
// softplus(x) = log(1 + exp(x)), with d/dx = sigmoid(x). Checked against finite differences.
#include <iostream>

#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "ops/ops.h"

using namespace ctxpool;
using autograd::AutogradContext;

struct Softplus : autograd::Function<Softplus> {
  static constexpr const char* name = "Softplus";

  static std::vector<Tensor> forward(AutogradContext& ctx, const std::vector<Tensor>& inputs) {
    const Tensor& x = inputs[0];
    ctx.save_for_backward({x});
    return {ops::log(ops::exp(x) + 1.0)};
  }

  // Written with ops, so it can itself be differentiated (double backward).
  static std::vector<Tensor> backward(AutogradContext& ctx, const std::vector<Tensor>& grads) {
    const Tensor x = ctx.get_saved_variables()[0];
    return {grads[0] * ops::sigmoid(x)};
  }
};

int main() {
  manual_seed(0);
  Tensor x = randn({4}, TensorOptions(kFloat64).requires_grad(true));
  Tensor y = Softplus::apply({x})[0];
  y.sum().backward();
  std::cout << "x            = " << x << "\n";
  std::cout << "softplus(x)  = " << y << "\n";
  std::cout << "d/dx         = " << x.grad() << "\n";
  std::cout << "sigmoid(x)   = " << ops::sigmoid(x.detach()) << "\n";

  auto fn = [](const std::vector<Tensor>& in) { return Softplus::apply({in[0]})[0]; };
  auto first = autograd::gradcheck(fn, {x});
  auto second = autograd::gradgradcheck(fn, {x});
  std::cout << "gradcheck: " << (first.ok ? "ok" : first.message) << "\n";
  std::cout << "gradgradcheck: " << (second.ok ? "ok" : second.message) << "\n";
  return first.ok && second.ok ? 0 : 1;
}
