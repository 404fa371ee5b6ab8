#include <cmath>
#include <sstream>

#include "helpers/test_utils.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "nn/transformer.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(Linear, ComputesXWtPlusBAndRegistersParameters) {
  manual_seed(1);
  nn::Linear lin(3, 2, true, kFloat64);
  auto named = lin.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(lin.weight.sizes(), (Shape{2, 3}));
  EXPECT_EQ(lin.num_parameters(), 8);
  EXPECT_TRUE(lin.weight.requires_grad());
  Tensor x = randn({4, 3}, kFloat64);
  Tensor want = ops::add(ops::matmul(x, lin.weight.t()), lin.bias);
  expect_values(lin.forward(x), want.to_vector<double>(), 1e-12);
  EXPECT_EQ(lin.forward(randn({5, 4, 3}, kFloat64)).sizes(), (Shape{5, 4, 2}));
  EXPECT_ERROR_WITH(lin.forward(randn({4, 5}, kFloat64)), "Linear", "[4, 5]", "in_features 3");
  // Default init: U(-1/sqrt(in), 1/sqrt(in)).
  nn::Linear big(100, 50);
  EXPECT_LE(big.weight.abs().max().item(), 0.1 + 1e-7);
}

TEST(Linear, Gradcheck) {
  manual_seed(2);
  auto lin = std::make_shared<nn::Linear>(3, 2, true, kFloat64);
  EXPECT_GRADCHECK([lin](const V& in) { return lin->forward(in[0]); }, V{param({2, 2, 3})});
  EXPECT_GRADCHECK([lin](const V& in) { return ops::add(ops::matmul(in[0], in[1].t()), in[2]); },
                   V{param({2, 3}), lin->weight, lin->bias});
}

TEST(Module, StateDictRoundTripAndErrors) {
  manual_seed(3);
  nn::Sequential a({std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(8, 2)});
  nn::Sequential b({std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::GELU>(), std::make_shared<nn::Linear>(8, 2)});
  auto sd = a.state_dict();
  ASSERT_EQ(sd.size(), 4u);
  EXPECT_TRUE(sd.count("0.weight") && sd.count("2.bias"));
  Tensor x = randn({3, 4});
  b.load_state_dict(sd);
  EXPECT_EQ(a.forward(x).to_vector<float>(), b.forward(x).to_vector<float>());
  // The loaded values are copies: changing a does not change b.
  {
    NoGradGuard g;
    sd["0.weight"].fill_(0.0);
  }
  EXPECT_NE(b.state_dict()["0.weight"].abs().sum().item(), 0.0);

  auto missing = a.state_dict();
  missing.erase("2.bias");
  missing["extra.weight"] = zeros({1});
  EXPECT_ERROR_WITH(b.load_state_dict(missing), "load_state_dict", "missing keys [2.bias]", "unexpected keys [extra.weight]");
  auto partial = a.state_dict();
  partial.erase("2.bias");
  b.load_state_dict(partial, /*strict=*/false);  // missing keys are allowed when not strict
  auto wrong = a.state_dict();
  wrong["0.weight"] = zeros({8, 5});
  EXPECT_ERROR_WITH(b.load_state_dict(wrong), "load_state_dict", "0.weight", "[8, 5]", "[8, 4]");
}

TEST(Module, TrainEvalZeroGradAndPrint) {
  auto block = std::make_shared<nn::TransformerBlock>(nn::TransformerBlockOptions{16, 2, 32, true, 0.5});
  EXPECT_TRUE(block->drop->is_training());
  block->eval();
  EXPECT_FALSE(block->drop->is_training());
  EXPECT_FALSE(block->attn->qkv->is_training());
  Tensor x = randn({2, 5, 16});
  EXPECT_EQ(block->forward(x).to_vector<float>(), block->forward(x).to_vector<float>());  // no dropout in eval
  block->train();
  block->forward(x).sum().backward();
  EXPECT_TRUE(block->mlp->fc1->weight.grad().defined());
  block->zero_grad();
  EXPECT_FALSE(block->mlp->fc1->weight.grad().defined());
  std::ostringstream os;
  os << *block;
  EXPECT_NE(os.str().find("(attn): MultiheadAttention("), std::string::npos);
  EXPECT_NE(os.str().find("weight: [48, 16]"), std::string::npos);
  auto names = block->named_parameters();
  EXPECT_EQ(names.front().first, "ln1.weight");
  EXPECT_EQ(names[2].first, "attn.qkv.weight");
}

TEST(Embedding, AndLayerNormModules) {
  manual_seed(4);
  nn::Embedding emb(10, 4);
  EXPECT_EQ(emb.forward(tensor({1.0, 9.0}, {1, 2}, kInt64)).sizes(), (Shape{1, 2, 4}));
  nn::LayerNorm ln(4);
  expect_values(ln.weight, {1, 1, 1, 1});
  Tensor y = ln.forward(randn({3, 4}));
  expect_values(y.mean({1}), {0, 0, 0}, 1e-5);
}

TEST(Init, DistributionsHaveTheRightScale) {
  manual_seed(5);
  Tensor w = empty({256, 512});
  nn::init::xavier_uniform_(w);
  EXPECT_LE(w.abs().max().item(), std::sqrt(6.0 / 768) + 1e-6);
  nn::init::kaiming_normal_(w);
  EXPECT_NEAR(w.var({0, 1}).item(), 2.0 / 512, 2e-4);
  nn::init::normal_(w, 1.0, 0.02);
  EXPECT_NEAR(w.mean().item(), 1.0, 1e-3);
  Tensor vec = zeros({3});
  EXPECT_ERROR_WITH(nn::init::xavier_uniform_(vec), "fan", "[3]");
}

// ---- attention ----

namespace {
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.sizes().back()));
  Tensor s = ops::mul(ops::matmul(q, ops::transpose(k, -1, -2)), scalar_tensor(scale, q.dtype()));
  if (causal) {
    const int64_t t = q.sizes()[q.dim() - 2];
    Tensor future = ops::gt(ops::unsqueeze(arange(t, kInt64), 0), ops::unsqueeze(arange(t, kInt64), 1));
    s = s.masked_fill(future, -INFINITY);
  }
  return ops::matmul(ops::softmax(s, -1), v);
}
}  // namespace

TEST(Attention, MatchesTheUnfusedFormula) {
  manual_seed(6);
  Tensor q = randn({2, 3, 5, 4}, kFloat64), k = randn({2, 3, 5, 4}, kFloat64), v = randn({2, 3, 5, 6}, kFloat64);
  for (bool causal : {false, true}) {
    expect_values(ops::scaled_dot_product_attention(q, k, v, causal),
                  reference_attention(q, k, v, causal).to_vector<double>(), 1e-12);
  }
  // Non-contiguous inputs (a transposed view) give the same result.
  Tensor qt = q.transpose(1, 2).contiguous().transpose(1, 2);
  expect_values(ops::scaled_dot_product_attention(qt, k, v, true), reference_attention(q, k, v, true).to_vector<double>(), 1e-12);
  EXPECT_ERROR_WITH(ops::scaled_dot_product_attention(q, k, randn({2, 3, 4, 6}, kFloat64)), "scaled_dot_product_attention",
                    "do not fit");
  EXPECT_ERROR_WITH(ops::scaled_dot_product_attention(q.select(0, 0).select(0, 0), k, v), "scaled_dot_product_attention",
                    ">= 3");
}

TEST(Attention, Gradchecks) {
  manual_seed(7);
  for (bool causal : {false, true}) {
    EXPECT_GRADCHECK([causal](const V& in) { return ops::scaled_dot_product_attention(in[0], in[1], in[2], causal); },
                     V{param({2, 4, 3}), param({2, 4, 3}), param({2, 4, 2})});
  }
  // Views of one fused projection, as MultiheadAttention passes them.
  EXPECT_GRADCHECK([](const V& in) {
    Tensor qkv = in[0].reshape({1, 4, 3, 2, 2}).permute({2, 0, 3, 1, 4});
    return ops::scaled_dot_product_attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), true);
  }, V{param({1, 4, 12})});
  EXPECT_GRADGRADCHECK([](const V& in) { return ops::scaled_dot_product_attention(in[0], in[1], in[2], true); },
                       V{param({1, 3, 2}), param({1, 3, 2}), param({1, 3, 2})});
}

TEST(MultiheadAttention, IsCausal) {
  manual_seed(8);
  nn::MultiheadAttention attn(8, 2, true);
  Tensor x = randn({1, 6, 8});
  Tensor y = attn.forward(x);
  Tensor x2 = x.clone();
  {
    NoGradGuard g;
    x2.narrow(1, 4, 2).fill_(3.0);  // change the future
  }
  Tensor y2 = attn.forward(x2);
  expect_values(y2.narrow(1, 0, 4), y.narrow(1, 0, 4).to_vector<double>(), 1e-6);
  EXPECT_GT(ops::abs(ops::sub(y2.narrow(1, 4, 2), y.narrow(1, 4, 2))).max().item(), 1e-3);
  EXPECT_ERROR_WITH(nn::MultiheadAttention(10, 3, true), "MultiheadAttention", "not divisible");
}

TEST(TransformerBlock, GradcheckInFloat64) {
  manual_seed(9);
  nn::TransformerBlockOptions o{8, 2, 16, true, 0.0, "tanh"};
  auto block = std::make_shared<nn::TransformerBlock>(o, kFloat64);
  EXPECT_GRADCHECK([block](const V& in) { return block->forward(in[0]); }, V{param({1, 3, 8})});
  // And w.r.t. a parameter deep inside.
  Tensor x = randn({1, 3, 8}, kFloat64);
  EXPECT_GRADCHECK([block, x](const V&) { return block->forward(x); }, V{block->attn->qkv->weight});
}
