// A two-layer MLP learns XOR with plain SGD written by hand: forward, backward, update under
// NoGradGuard, zero the grads. No nn/ or optim/ yet: everything is visible.
#include <cstdio>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

using namespace ctxpool;

int main() {
  manual_seed(0);
  const Tensor x = tensor({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const Tensor y = tensor({0, 1, 1, 0}, {4, 1});

  // 2 -> 8 (tanh) -> 1 (sigmoid)
  Tensor w1 = (randn({2, 8}) * 1.0).detach().requires_grad_();
  Tensor b1 = zeros({8}, TensorOptions().requires_grad(true));
  Tensor w2 = (randn({8, 1}) * 0.5).detach().requires_grad_();
  Tensor b2 = zeros({1}, TensorOptions().requires_grad(true));
  std::vector<Tensor> params{w1, b1, w2, b2};

  const double lr = 0.5;
  double loss_value = 1.0;
  int step = 0;
  for (; step < 5000 && loss_value >= 0.01; ++step) {
    Tensor h = ops::tanh(ops::matmul(x, w1) + b1);
    Tensor p = ops::sigmoid(ops::matmul(h, w2) + b2);
    // Binary cross-entropy, written out.
    Tensor loss = -(y * ops::log(p) + (1.0 - y) * ops::log(1.0 - p)).mean();
    loss.backward();
    {
      NoGradGuard no_grad;  // the update is not part of the graph
      for (Tensor& t : params) {
        t.add_(t.grad(), -lr);
        t.set_grad(Tensor());
      }
    }
    loss_value = loss.item();
    if (step % 200 == 0) std::printf("step %4d  loss %.5f\n", step, loss_value);
  }
  std::printf("step %4d  loss %.5f\n", step, loss_value);
  NoGradGuard no_grad;
  Tensor p = ops::sigmoid(ops::matmul(ops::tanh(ops::matmul(x, w1) + b1), w2) + b2);
  std::printf("predictions: %.3f %.3f %.3f %.3f (targets 0 1 1 0)\n", p.at({0, 0}), p.at({1, 0}),
              p.at({2, 0}), p.at({3, 0}));
  return loss_value < 0.01 ? 0 : 1;
}
