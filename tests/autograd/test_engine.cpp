#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/graph_dot.h"
#include "autograd/record.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Engine, SimpleExpression) {
  Tensor x = tensor({2.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor y = tensor({3.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor z = (x * y + x.exp()).sum();
  z.backward();
  expect_values(x.grad(), {3.0 + std::exp(2.0)}, 1e-12);
  expect_values(y.grad(), {2.0}, 1e-12);
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(z.is_leaf());
}

TEST(Engine, DiamondGraphSumsBothPaths) {
  // x -> a = 2x, b = x^2 -> c = a * b = 2x^3 ; dc/dx = 6x^2
  Tensor x = tensor({1.5}, TensorOptions(kFloat64).requires_grad(true));
  Tensor a = x * 2.0;
  Tensor b = x * x;
  (a * b).sum().backward();
  expect_values(x.grad(), {6 * 1.5 * 1.5}, 1e-12);
}

TEST(Engine, ReuseAndAccumulationAcrossBackwards) {
  Tensor x = tensor({1.0, 2.0}, TensorOptions(kFloat64).requires_grad(true));
  (x + x + x).sum().backward();
  expect_values(x.grad(), {3, 3});
  (x * x).sum().backward();  // accumulates into the existing grad
  expect_values(x.grad(), {5, 7});
  x.set_grad(Tensor());
  (x * 4.0).sum().backward();
  expect_values(x.grad(), {4, 4});
}

TEST(Engine, NoGradRecordsNothing) {
  Tensor x = param({3});
  Tensor y;
  {
    NoGradGuard guard;
    y = x * 2.0;
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_ERROR_WITH(y.sum().backward(), "backward", "does not require grad");
  EXPECT_TRUE(autograd::GradMode::is_enabled());
}

TEST(Engine, DetachCutsTheGraph) {
  Tensor x = param({3});
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  Tensor y = (d * x).sum();
  y.backward();
  // Only the direct path through x counts: dy/dx = d.
  expect_values(x.grad(), d.to_vector<double>(), 1e-12);
}

TEST(Engine, SecondBackwardNeedsRetainGraph) {
  Tensor x = param({3});
  Tensor y = (x.exp() * x).sum();
  y.backward({}, /*retain_graph=*/true);
  const auto first = x.grad().to_vector<double>();
  y.backward();  // graph was retained: works, and accumulates
  const auto second = x.grad().to_vector<double>();
  for (size_t i = 0; i < first.size(); ++i) EXPECT_NEAR(second[i], 2 * first[i], 1e-12);
  EXPECT_ERROR_WITH(y.backward(), "already used by a backward", "retain_graph");
}

TEST(Engine, GraphIsFreedAfterBackward) {
  Tensor x = param({100});
  std::weak_ptr<TensorImpl> saved;
  Tensor y;
  {
    Tensor h = x.exp();  // saved by the mul below
    saved = h.impl();
    y = (h * h).sum();
  }
  EXPECT_FALSE(saved.expired());  // still held by the graph
  y.backward();
  EXPECT_TRUE(saved.expired());   // freed by backward
}

TEST(Engine, DeepChainDoesNotOverflowTheStack) {
  Tensor x = tensor({1.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001;
  y.sum().backward();
  expect_values(x.grad(), {std::pow(1.0001, 20000)}, 1e-9);
  // Dropping a long graph without running backward must not recurse either.
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = z + 1.0;
  z = Tensor();
}

TEST(Engine, InPlaceChangeOfSavedTensorIsAnError) {
  Tensor w = param({3});
  Tensor a = randn({3}, kFloat64);  // does not require grad: may be changed in place
  Tensor y = (w * a).sum();          // mul saves a
  a.add_(ones({3}, kFloat64));
  EXPECT_ERROR_WITH(y.backward(), "mul", "modified by an in-place operation", "version 1",
                    "expected version 0");
}

TEST(Engine, InPlaceOnTensorThatRequiresGradIsRefused) {
  Tensor w = param({3});
  EXPECT_ERROR_WITH(w.fill_(0.0), "fill_", "requires grad", "NoGradGuard");
  EXPECT_ERROR_WITH(w.add_(w), "add_", "requires grad");
  NoGradGuard guard;  // an optimizer step
  w.mul_(0.5);
  EXPECT_EQ(w.version(), 1u);
}

TEST(Engine, ExplicitGradientForNonScalar) {
  Tensor x = param({2, 2});
  Tensor y = x * 3.0;
  EXPECT_ERROR_WITH(y.backward(), "backward", "one-element", "[2, 2]");
  EXPECT_ERROR_WITH(y.backward(ones({3}, kFloat64)), "backward", "[3]", "[2, 2]");
  y.backward(ones({2, 2}, kFloat64));
  expect_values(x.grad(), {3, 3, 3, 3});
}

TEST(Engine, AutogradGradDoesNotTouchLeafGrads) {
  Tensor x = param({3});
  Tensor y = param({3});
  Tensor z = (x * y).sum();
  auto g = autograd::grad({z}, {x});
  expect_values(g[0], y.to_vector<double>(), 1e-12);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(y.grad().defined());
  Tensor unused = param({1});
  Tensor z2 = (x * 2.0).sum();
  EXPECT_ERROR_WITH(autograd::grad({z2}, {unused}), "autograd::grad", "not used");
}

TEST(Engine, GradOfNonLeafInput) {
  Tensor x = param({3});
  Tensor h = x * 2.0;
  Tensor z = (h * h).sum();
  auto g = autograd::grad({z}, {h});
  expect_values(g[0], ops::mul(h, ops::scalar_like(2.0, h)).to_vector<double>(), 1e-12);
}

// Second derivatives through create_graph.
TEST(Engine, SecondDerivativeOfCube) {
  Tensor x = tensor({0.5, -1.5, 2.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor y = (x * x * x).sum();
  Tensor dx = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true)[0];
  expect_values(dx, {0.75, 6.75, 12.0}, 1e-12);  // 3x^2
  dx.sum().backward();
  expect_values(x.grad(), {3.0, -9.0, 12.0}, 1e-12);  // 6x
}

TEST(Engine, SecondDerivativeOfTanh) {
  Tensor x = tensor({0.3, -0.7}, TensorOptions(kFloat64).requires_grad(true));
  Tensor dx = autograd::grad({x.tanh().sum()}, {x}, {}, false, true)[0];
  dx.sum().backward();
  for (int i = 0; i < 2; ++i) {
    const double v = x.at({i}), t = std::tanh(v);
    EXPECT_NEAR(x.grad().at({i}), -2 * t * (1 - t * t), 1e-12);
  }
}

TEST(Engine, MixedSecondDerivativeOfProduct) {
  Tensor a = tensor({2.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor b = tensor({3.0}, TensorOptions(kFloat64).requires_grad(true));
  Tensor z = (a * a * b).sum();  // dz/da = 2ab, d2z/dadb = 2a
  Tensor da = autograd::grad({z}, {a}, {}, false, true)[0];
  expect_values(da, {12.0}, 1e-12);
  auto g2 = autograd::grad({da.sum()}, {a, b});
  expect_values(g2[0], {6.0}, 1e-12);  // d(2ab)/da = 2b
  expect_values(g2[1], {4.0}, 1e-12);  // d(2ab)/db = 2a
}

TEST(Engine, BackwardWithCreateGraphAccumulatesDifferentiableGrad) {
  Tensor x = tensor({1.0, 2.0}, TensorOptions(kFloat64).requires_grad(true));
  (x * x * x).sum().backward({}, false, /*create_graph=*/true);
  Tensor g = x.grad();
  EXPECT_TRUE(g.requires_grad());
  auto gg = autograd::grad({g.sum()}, {x});
  expect_values(gg[0], {6.0, 12.0}, 1e-12);
  x.set_grad(Tensor());  // break the x -> grad -> graph -> x cycle (see below)
}

TEST(Engine, ToDotDescribesTheGraph) {
  Tensor w = param({2, 2});
  w.set_name("weight");
  Tensor x = randn({2}, kFloat64);
  Tensor loss = ops::matmul(w, x).tanh().sum();
  const std::string dot = autograd::to_dot(loss);
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("weight"), std::string::npos);
  EXPECT_NE(dot.find("tanh"), std::string::npos);
  EXPECT_NE(dot.find("matmul"), std::string::npos);
  EXPECT_NE(dot.find("sum"), std::string::npos);
}

TEST(Engine, LeafGradsNeverShareMemory) {
  // add's backward hands the same gradient to both inputs; each leaf must own its .grad().
  Tensor a = param({3}), b = param({3});
  Tensor out = a + b;
  Tensor upstream = ones({3}, kFloat64);
  out.backward(upstream);
  {
    NoGradGuard no_grad;
    a.grad().mul_(5.0);
  }
  expect_values(b.grad(), {1, 1, 1});
  expect_values(upstream, {1, 1, 1});
}

TEST(Engine, CreateGraphCycleIsBrokenByClearingGrad) {
  // As in PyTorch, backward(create_graph=true) makes x.grad() hold a graph that saved x: a cycle.
  // Clearing the gradient breaks it (autograd::grad() avoids it altogether).
  std::weak_ptr<TensorImpl> watch;
  {
    Tensor x = param({2});
    watch = x.impl();
    (x * x * x).sum().backward({}, false, true);
    x.set_grad(Tensor());
  }
  EXPECT_TRUE(watch.expired());
}

// A backward that returns a gradient of the wrong size is named in the error (the op is where the
// mistake is), not only the node that receives it.
TEST(Engine, WrongSizeGradientNamesTheOpThatMadeIt) {
  Tensor x = param({3});
  Tensor y = autograd::record("buggy_op", {x}, ops::mul(x.detach(), x.detach()),
                              [](const Tensor& g, const autograd::LambdaNode&) {
                                return std::vector<Tensor>{ops::sum(g).reshape({1})};  // [1], not [3]
                              });
  EXPECT_ERROR_WITH(ops::sum(y).backward(), "'buggy_op' returned a gradient for its input 0", "[1]", "[3]");
}
