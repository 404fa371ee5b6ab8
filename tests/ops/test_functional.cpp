#include <cmath>

#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Softmax, ValuesAndStability) {
  Tensor x = tensor({1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0}, {2, 3}, kFloat64);
  const double e = std::exp(1.0), s = 1 + e + e * e;
  expect_values(ops::softmax(x, 1), {1 / s, e / s, e * e / s, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-12);
  expect_values(ops::log_softmax(x, 1), {-std::log(s), 1 - std::log(s), 2 - std::log(s), -std::log(3.0),
                                         -std::log(3.0), -std::log(3.0)}, 1e-12);
  // Along dim 0 (not the last): columns sum to 1.
  expect_values(ops::softmax(x, 0).sum({0}), {1, 1, 1}, 1e-12);
  // A row of -inf (a fully masked attention row) gives NaN-free zeros... only where defined.
  Tensor masked = tensor({0.0, -INFINITY}, {1, 2}, kFloat64);
  expect_values(ops::softmax(masked, 1), {1, 0});
}

TEST(LayerNorm, Values) {
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 2.0}, {2, 4}, kFloat64);
  Tensor y = ops::layer_norm(x, {4}, Tensor(), Tensor(), 0.0);
  const double sd = std::sqrt(1.25);
  expect_values(y, {-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, -1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd}, 1e-12);
  Tensor w = tensor({1.0, 2.0, 1.0, 1.0}, kFloat64), b = tensor({0.0, 0.0, 0.0, 1.0}, kFloat64);
  Tensor y2 = ops::layer_norm(x, {4}, w, b, 0.0);
  EXPECT_NEAR(y2.at({0, 1}), -1.0 / sd, 1e-12);
  EXPECT_NEAR(y2.at({0, 3}), 1.5 / sd + 1.0, 1e-12);
  EXPECT_ERROR_WITH(ops::layer_norm(x, {3}), "layer_norm", "[2, 4]", "[3]");
  EXPECT_ERROR_WITH(ops::layer_norm(x, {4}, ones({3}, kFloat64)), "layer_norm", "weight", "[3]");
}

TEST(CrossEntropy, ValuesIgnoreIndexReductions) {
  Tensor logits = tensor({1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 5.0, 1.0, 1.0}, {3, 3}, kFloat64);
  Tensor target = tensor({2.0, 0.0, 0.0}, {3}, kInt64);
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  const double l1 = std::log(3.0);
  const double l2 = std::log(std::exp(5.0) + 2 * std::exp(1.0)) - 5.0;
  expect_values(ops::cross_entropy(logits, target, -100, ops::Reduction::None), {l0, l1, l2}, 1e-12);
  EXPECT_NEAR(ops::cross_entropy(logits, target).item(), (l0 + l1 + l2) / 3, 1e-12);
  EXPECT_NEAR(ops::cross_entropy(logits, target, -100, ops::Reduction::Sum).item(), l0 + l1 + l2, 1e-12);
  Tensor with_ignored = tensor({2.0, -1.0, 0.0}, {3}, kInt64);
  EXPECT_NEAR(ops::cross_entropy(logits, with_ignored, -1).item(), (l0 + l2) / 2, 1e-12);
  // Matches log_softmax + gather.
  Tensor nll = ops::gather(ops::log_softmax(logits, 1), 1, target.unsqueeze(1)).neg().mean();
  EXPECT_NEAR(nll.item(), ops::cross_entropy(logits, target).item(), 1e-12);
}

TEST(CrossEntropy, BadInputs) {
  Tensor logits = zeros({4, 3});
  EXPECT_ERROR_WITH(ops::cross_entropy(logits, zeros({4})), "cross_entropy", "int64", "float32");
  EXPECT_ERROR_WITH(ops::cross_entropy(logits, arange(3, kInt64)), "cross_entropy", "[3]", "[4, 3]");
  EXPECT_ERROR_WITH(ops::cross_entropy(logits, arange(4, kInt64)), "cross_entropy", "target 3", "3 classes");
  EXPECT_ERROR_WITH(ops::cross_entropy(zeros({2, 4, 3}), arange(2, kInt64)), "cross_entropy", "2-D");
}

TEST(Dropout, SeededScaledAndIdentityInEval) {
  Tensor x = ones({10000}, kFloat64);
  manual_seed(7);
  Tensor y = ops::dropout(x, 0.25);
  const double kept = ops::gt(y, ops::scalar_like(0.0, y)).to(kFloat64).mean().item();
  EXPECT_NEAR(kept, 0.75, 0.02);
  EXPECT_NEAR(y.max().item(), 1.0 / 0.75, 1e-12);
  EXPECT_NEAR(y.mean().item(), 1.0, 0.03);
  manual_seed(7);
  EXPECT_EQ(ops::dropout(x, 0.25).to_vector<double>(), y.to_vector<double>());
  EXPECT_TRUE(ops::dropout(x, 0.5, /*training=*/false).is_same(x));
  EXPECT_EQ(ops::dropout(x, 1.0).sum().item(), 0.0);
  EXPECT_ERROR_WITH(ops::dropout(x, 1.5), "dropout", "[0, 1]");
}

// ops::uniform (dropout's numbers, drawn by the kernel table on the tensor's device) gives exactly
// the host generator's rand(), element for element, and advances the generator by as many blocks.
TEST(Dropout, UniformKernelIsTheHostGeneratorsStream) {
  for (DType dtype : {kFloat32, kFloat64}) {
    for (int64_t n : {1, 7, 4096 * 3 + 5}) {  // a partial last block; several threads' worth
      manual_seed(11);
      rand({3}, dtype);  // not at offset 0
      const Tensor host = rand({n}, dtype);
      const uint64_t after_host = default_generator().offset();
      manual_seed(11);
      rand({3}, dtype);
      const Tensor kernel = ops::uniform({n}, TensorOptions(dtype));
      EXPECT_EQ(kernel.dtype(), dtype);
      EXPECT_EQ(kernel.to_vector<double>(), host.to_vector<double>()) << dtype << " n " << n;
      EXPECT_EQ(default_generator().offset(), after_host);
    }
  }
  EXPECT_ERROR_WITH(ops::uniform({2}, TensorOptions(kInt64)), "uniform", "floating");
}

TEST(FunctionalGrad, Gradchecks) {
  manual_seed(50);
  EXPECT_GRADCHECK([](const V& in) { return ops::softmax(in[0], 1); }, V{param({2, 4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::softmax(in[0], 0); }, V{param({3, 2})});
  EXPECT_GRADCHECK([](const V& in) { return ops::log_softmax(in[0], -1); }, V{param({2, 4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::log_softmax(in[0].t(), 1); }, V{param({4, 2})});
  EXPECT_GRADCHECK([](const V& in) { return ops::layer_norm(in[0], {4}, in[1], in[2]); },
                   V{param({3, 4}), param({4}), param({4})});
  EXPECT_GRADCHECK([](const V& in) { return ops::layer_norm(in[0], {2, 3}); }, V{param({2, 2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return ops::layer_norm(in[0], {2, 3}, in[1], in[2]); },
                   V{param({3, 2, 3}), param({2, 3}), param({2, 3})});
  EXPECT_GRADCHECK([](const V& in) { return ops::layer_norm(in[0], {3}, Tensor(), in[1]); }, V{param({70, 3}), param({3})});
  EXPECT_GRADCHECK([](const V& in) { return ops::layer_norm(in[0].t(), {2}, in[1], Tensor()); },
                   V{param({2, 3}), param({2})});
  Tensor target = tensor({1.0, 0.0, 3.0, 2.0}, {4}, kInt64);
  EXPECT_GRADCHECK([target](const V& in) { return ops::cross_entropy(in[0], target); }, V{param({4, 4})});
  Tensor partly_ignored = tensor({1.0, -100.0, 3.0, 2.0}, {4}, kInt64);
  EXPECT_GRADCHECK([partly_ignored](const V& in) {
    return ops::cross_entropy(in[0], partly_ignored, -100, ops::Reduction::Sum);
  }, V{param({4, 4})});
  EXPECT_GRADCHECK([target](const V& in) {
    return ops::cross_entropy(in[0], target, -100, ops::Reduction::None);
  }, V{param({4, 4})});
  // Dropout: same seed for the analytic and every numeric evaluation.
  EXPECT_GRADCHECK([](const V& in) { manual_seed(99); return ops::dropout(in[0], 0.3); }, V{param({3, 3})});
}

TEST(FunctionalGrad, SecondOrder) {
  manual_seed(51);
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::softmax(in[0], 1); }, V{param({2, 3})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::log_softmax(in[0], 1); }, V{param({2, 3})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::layer_norm(in[0], {3}, in[1], in[2]); },
                       V{param({2, 3}), param({3}), param({3})});
  Tensor target = tensor({1.0, 0.0}, {2}, kInt64);
  EXPECT_GRADGRADCHECK([target](const V& in) { return ops::cross_entropy(in[0], target); }, V{param({2, 3})});
}

// A fully padded batch: the mean loss is NaN (0 / 0, as in PyTorch), its gradient 0, not NaN.
TEST(CrossEntropy, AllIgnoredGivesZeroGradient) {
  Tensor logits = randn({3, 4}, TensorOptions(kFloat64).requires_grad(true));
  const Tensor target = tensor({-100.0, -100.0, -100.0}, {3}, kInt64);
  const Tensor loss = ops::cross_entropy(logits, target);
  EXPECT_TRUE(std::isnan(loss.item()));
  loss.backward();
  expect_values(logits.grad(), std::vector<double>(12, 0.0), 0.0);
  // Sum reduction and the no-grad-mode path agree: nothing counted, nothing moves.
  Tensor l2 = randn({2, 4}, TensorOptions(kFloat32).requires_grad(true));
  ops::cross_entropy(l2, tensor({-1.0, -1.0}, {2}, kInt64), -1, ops::Reduction::Sum).backward();
  expect_values(l2.grad(), std::vector<double>(8, 0.0), 0.0);
}

// Zero rows: the parameter gradients are zeros (they were left as the allocator gave them).
TEST(LayerNorm, ZeroRowsGiveZeroParameterGradients) {
  for (const Shape& shape : {Shape{0, 8}, Shape{2, 0, 8}}) {
    // Fill the allocator's memory with NaN first, so an unwritten output shows.
    { Tensor junk = full({64}, NAN, kFloat64); }
    Tensor x = zeros(shape, TensorOptions(kFloat64).requires_grad(true));
    Tensor w = ones({8}, TensorOptions(kFloat64).requires_grad(true));
    Tensor b = zeros({8}, TensorOptions(kFloat64).requires_grad(true));
    ops::sum(ops::layer_norm(x, {8}, w, b)).backward();
    expect_values(w.grad(), std::vector<double>(8, 0.0), 0.0);
    expect_values(b.grad(), std::vector<double>(8, 0.0), 0.0);
    EXPECT_EQ(x.grad().sizes(), shape);
  }
}
