// Outputs and gradients of ops on inputs with a zero-sized dim (issue 10): with every CPU allocation
// filled with NaN first (core/allocator.h, set_poison_allocations), a kernel that leaves part of its
// output unwritten shows up as NaN. Each case checks the forward output and every input's gradient
// (of the output's sum): no NaN, and the gradients PyTorch gives (zeros of the input's shape, since
// no output element depends on them).
#include <cmath>
#include <functional>

#include "core/allocator.h"
#include "helpers/test_utils.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

struct EmptyCase {
  std::string name;
  std::function<std::vector<Tensor>()> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> op;
};

// (so that gtest names a failing case instead of dumping its bytes)
void PrintTo(const EmptyCase& c, std::ostream* os) { *os << c.name; }

Tensor leaf(const Shape& shape) { return param(shape); }  // float64, requires grad

// Integer and other non-differentiable inputs go in as they are.
Tensor constant(const Tensor& t) { return t; }

std::vector<EmptyCase> cases() {
  using V = std::vector<Tensor>;
  return {
      {"sum_over_an_empty_dim", [] { return V{leaf({2, 0, 3})}; },
       [](const V& x) { return ops::sum(x[0], {1}); }},
      {"matmul_with_k_0", [] { return V{leaf({2, 0}), leaf({0, 3})}; },
       [](const V& x) { return ops::matmul(x[0], x[1]); }},
      {"matmul_with_m_0", [] { return V{leaf({0, 4}), leaf({4, 3})}; },
       [](const V& x) { return ops::matmul(x[0], x[1]); }},
      {"linear_with_no_rows", [] { return V{leaf({0, 4}), leaf({4, 3}), leaf({3})}; },
       [](const V& x) { return ops::add(ops::matmul(x[0], x[1]), x[2]); }},
      {"batched_matmul_with_batch_0", [] { return V{leaf({0, 2, 3}), leaf({3, 4})}; },
       [](const V& x) { return ops::matmul(x[0], x[1]); }},
      {"layer_norm_with_no_rows", [] { return V{leaf({0, 8}), leaf({8}), leaf({8})}; },
       [](const V& x) { return ops::layer_norm(x[0], {8}, x[1], x[2]); }},
      {"layer_norm_with_an_empty_middle_dim", [] { return V{leaf({2, 0, 6}), leaf({6}), leaf({6})}; },
       [](const V& x) { return ops::layer_norm(x[0], {6}, x[1], x[2]); }},
      {"softmax_of_no_rows", [] { return V{leaf({0, 5})}; }, [](const V& x) { return ops::softmax(x[0], 1); }},
      {"log_softmax_of_no_rows", [] { return V{leaf({0, 5})}; },
       [](const V& x) { return ops::log_softmax(x[0], 1); }},
      {"cross_entropy_sum_of_no_rows", [] { return V{leaf({0, 5}), constant(zeros({0}, kInt64))}; },
       [](const V& x) { return ops::cross_entropy(x[0], x[1], -100, ops::Reduction::Sum); }},
      {"embedding_of_no_indices", [] { return V{leaf({5, 3}), constant(zeros({0}, kInt64))}; },
       [](const V& x) { return ops::embedding(x[0], x[1]); }},
      {"embedding_of_an_empty_batch", [] { return V{leaf({5, 3}), constant(zeros({0, 4}, kInt64))}; },
       [](const V& x) { return ops::embedding(x[0], x[1]); }},
      {"gather_of_an_empty_index", [] { return V{leaf({3, 4}), constant(zeros({3, 0}, kInt64))}; },
       [](const V& x) { return ops::gather(x[0], 1, x[1]); }},
      {"cat_with_an_empty_part", [] { return V{leaf({0, 3}), leaf({2, 3})}; },
       [](const V& x) { return ops::cat({x[0], x[1]}, 0); }},
      {"attention_with_batch_0", [] { return V{leaf({0, 2, 4, 8}), leaf({0, 2, 4, 8}), leaf({0, 2, 4, 8})}; },
       [](const V& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2], true); }},
      {"local_attention_with_batch_0", [] { return V{leaf({0, 4, 8}), leaf({0, 4, 8}), leaf({0, 4, 8})}; },
       [](const V& x) { return ops::local_attention(x[0], x[1], x[2], 2); }},
      {"context_pool1d_of_an_empty_sequence", [] { return V{leaf({2, 0, 4}), leaf({2, 0}), leaf({2, 0})}; },
       [](const V& x) { return ops::context_pool1d(x[0], x[1], x[2]); }},
      {"context_pool1d_with_no_features", [] { return V{leaf({2, 5, 0}), leaf({2, 5}), leaf({2, 5})}; },
       [](const V& x) { return ops::context_pool1d(x[0], x[1], x[2]); }},
      {"context_pool2d_with_batch_0", [] { return V{leaf({0, 3, 3, 4}), leaf({0, 3, 3}), leaf({0, 3, 3})}; },
       [](const V& x) { return ops::context_pool2d(x[0], x[1], x[2]); }},
      {"conv1d_with_batch_0", [] { return V{leaf({0, 3, 6}), leaf({4, 3, 3}), leaf({4})}; },
       [](const V& x) { return ops::conv1d(x[0], x[1], x[2], 2, 0); }},
      {"conv2d_with_batch_0", [] { return V{leaf({0, 3, 5, 5}), leaf({4, 3, 3, 3}), leaf({4})}; },
       [](const V& x) { return ops::conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }},
      {"conv2d_with_no_input_channels_in_a_group", [] { return V{leaf({2, 0, 5, 5}), leaf({4, 0, 3, 3}), leaf({4})}; },
       [](const V& x) { return ops::conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }},
      {"max_pool2d_with_batch_0", [] { return V{leaf({0, 2, 4, 4})}; },
       [](const V& x) { return ops::max_pool2d(x[0], {2, 2}); }},
      {"avg_pool2d_with_batch_0", [] { return V{leaf({0, 2, 4, 4})}; },
       [](const V& x) { return ops::avg_pool2d(x[0], {2, 2}); }},
      {"adaptive_avg_pool2d_with_batch_0", [] { return V{leaf({0, 2, 4, 4})}; },
       [](const V& x) { return ops::adaptive_avg_pool2d(x[0], {1, 1}); }},
      {"elementwise_broadcast_of_empty", [] { return V{leaf({0, 3}), leaf({3})}; },
       [](const V& x) { return ops::mul(ops::gelu(x[0]), x[1]); }},
  };
}

class EmptyInputs : public ::testing::TestWithParam<EmptyCase> {
 protected:
  void SetUp() override { set_poison_allocations(true); }
  void TearDown() override { set_poison_allocations(false); }
};

void expect_no_nan(const Tensor& t, const std::string& what) {
  if (t.numel() == 0) return;
  for (double v : t.to(kFloat64).to_vector<double>()) {
    ASSERT_FALSE(std::isnan(v)) << what << " has NaN: an element the kernel never wrote";
  }
}

TEST_P(EmptyInputs, WriteEveryOutputAndZeroGradients) {
  const EmptyCase& c = GetParam();
  const std::vector<Tensor> inputs = c.inputs();
  const Tensor out = c.op(inputs);
  expect_no_nan(out, "the output");
  ops::sum(out).backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    const Tensor g = inputs[i].grad();
    ASSERT_TRUE(g.defined()) << "input " << i << " got no gradient";
    EXPECT_EQ(g.sizes(), inputs[i].sizes()) << "input " << i;
    expect_no_nan(g, "the gradient of input " + std::to_string(i));
    if (out.numel() == 0) {  // nothing depends on the inputs: PyTorch gives zeros
      for (double v : g.to_vector<double>()) ASSERT_EQ(v, 0.0) << "gradient of input " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Case, EmptyInputs, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<EmptyCase>& info) { return info.param.name; });

TEST(PoisonedAllocations, FillNewAndReusedBlocksWithNaN) {
  set_poison_allocations(true);
  for (int round = 0; round < 2; ++round) {  // a new block, then the same size from the cache
    const Tensor t = empty({1000}, kFloat64);
    for (double v : t.to_vector<double>()) ASSERT_TRUE(std::isnan(v));
  }
  set_poison_allocations(false);
  EXPECT_FALSE(poison_allocations());
}

}  // namespace
