#include <cmath>

#include "autograd/engine.h"
#include "autograd/function.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using autograd::AutogradContext;

namespace {

// y = x^3, with a hand-written backward built from ops (so it is twice differentiable).
struct Cube : autograd::Function<Cube> {
  static constexpr const char* name = "Cube";
  static std::vector<Tensor> forward(AutogradContext& ctx, const std::vector<Tensor>& in) {
    ctx.save_for_backward({in[0]});
    return {in[0] * in[0] * in[0]};
  }
  static std::vector<Tensor> backward(AutogradContext& ctx, const std::vector<Tensor>& grad) {
    const Tensor x = ctx.get_saved_variables()[0];
    return {grad[0] * 3.0 * x * x};
  }
};

// Two inputs, two outputs, a saved output and a scalar: (a * s, exp(b)).
struct ScaleAndExp : autograd::Function<ScaleAndExp> {
  static std::vector<Tensor> forward(AutogradContext& ctx, const std::vector<Tensor>& in) {
    Tensor e = in[1].exp();
    ctx.save_for_backward({e});
    ctx.saved_data["scale"] = 2.5;
    return {in[0] * 2.5, e};
  }
  static std::vector<Tensor> backward(AutogradContext& ctx, const std::vector<Tensor>& grad) {
    const Tensor e = ctx.get_saved_variables()[0];
    return {grad[0] * ctx.saved_data["scale"], grad[1] * e};
  }
};

struct WrongShape : autograd::Function<WrongShape> {
  static constexpr const char* name = "WrongShape";
  static std::vector<Tensor> forward(AutogradContext&, const std::vector<Tensor>& in) {
    return {in[0] * 2.0};
  }
  static std::vector<Tensor> backward(AutogradContext&, const std::vector<Tensor>& grad) {
    return {grad[0].sum()};
  }
};

}  // namespace

TEST(CustomFunction, Gradcheck) {
  manual_seed(1);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return Cube::apply({in[0]})[0]; },
                   std::vector<Tensor>{param({2, 3})});
  EXPECT_GRADGRADCHECK([](const std::vector<Tensor>& in) { return Cube::apply({in[0]})[0]; },
                       std::vector<Tensor>{param({4})});
}

TEST(CustomFunction, MultipleOutputsAndSavedOutput) {
  manual_seed(2);
  autograd::FunctionN f = [](const std::vector<Tensor>& in) { return ScaleAndExp::apply(in); };
  auto result = autograd::gradcheck(f, {param({3}), param({2})});
  EXPECT_TRUE(result.ok) << result.message;
  // Using only one of the outputs: the other's gradient counts as zero.
  Tensor a = param({3}), b = param({2});
  ScaleAndExp::apply({a, b})[1].sum().backward();
  expect_values(a.grad(), {0, 0, 0});
}

TEST(CustomFunction, NamesItselfInGraphAndErrors) {
  Tensor x = param({3});
  Tensor y = Cube::apply({x})[0];
  EXPECT_EQ(y.grad_fn()->name(), "Cube");
  Tensor z = WrongShape::apply({x})[0];
  EXPECT_ERROR_WITH(z.sum().backward(), "WrongShape", "shape []", "[3]");
}

TEST(CustomFunction, NoGraphWithoutRequiresGrad) {
  Tensor x = randn({3}, kFloat64);
  Tensor y = Cube::apply({x})[0];
  EXPECT_FALSE(y.requires_grad());
}
