// The pooling layers and BatchNorm2d (nn/pool.h, nn/batch_norm.h): they call the ops with their
// options, BatchNorm2d keeps its running statistics as buffers (state_dict, save/load) and switches
// between batch and running statistics with train()/eval(), as torch.nn.BatchNorm2d.
#include "helpers/test_utils.h"
#include "nn/batch_norm.h"
#include "nn/pool.h"
#include "nn/sequential.h"
#include "nn/serialize.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;

TEST(PoolLayers, ForwardTheirOptions) {
  const Tensor x = arange(32, kFloat64).reshape({1, 2, 4, 4});
  nn::MaxPool2d max_pool(2);
  expect_values(max_pool.forward(x), ops::max_pool2d(x, {2, 2}).to_vector<double>(), 0);
  nn::MaxPool2dOptions max_options;
  max_options.stride = {1, 1};
  max_options.padding = {1, 1};
  max_options.ceil_mode = true;
  nn::MaxPool2d padded({3, 3}, max_options);
  expect_values(padded.forward(x), ops::max_pool2d(x, {3, 3}, {{1, 1}}, {1, 1}, {1, 1}, true).to_vector<double>(), 0);

  nn::AvgPool2dOptions avg_options;
  avg_options.padding = {1, 1};
  avg_options.count_include_pad = false;
  nn::AvgPool2d avg(3, avg_options);
  EXPECT_EQ(avg.forward(x).sizes(), (Shape{1, 2, 2, 2}));
  expect_values(avg.forward(x),
                ops::avg_pool2d(x, {3, 3}, std::nullopt, {1, 1}, false, false).to_vector<double>(), 0);

  nn::AdaptiveAvgPool2d global(1);
  expect_values(global.forward(x), {7.5, 23.5}, 1e-12);
  EXPECT_EQ(nn::AdaptiveAvgPool2d({3, 2}).forward(x).sizes(), (Shape{1, 2, 3, 2}));
  // No parameters, no buffers.
  EXPECT_EQ(max_pool.num_parameters() + avg.num_parameters() + global.num_parameters(), 0);
  EXPECT_TRUE(global.state_dict().empty());
}

TEST(PoolLayers, RejectBadSizesWhenBuilt) {
  EXPECT_ERROR_WITH(nn::MaxPool2d(0), "MaxPool2d", "kernel_size must be positive", "[0, 0]");
  nn::AvgPool2dOptions o;
  o.stride = {2, 0};
  EXPECT_ERROR_WITH(nn::AvgPool2d(2, o), "AvgPool2d", "stride", "[2, 0]");
  EXPECT_ERROR_WITH(nn::AdaptiveAvgPool2d({2, -1}), "AdaptiveAvgPool2d", "output_size");
  // The op's own checks, at forward time.
  EXPECT_ERROR_WITH(nn::MaxPool2d(4).forward(zeros({1, 1, 3, 3})), "max_pool2d", "empty output");
}

TEST(BatchNorm2dModule, ParametersBuffersAndStateDict) {
  nn::BatchNorm2d bn(3);
  const auto params = bn.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[1].first, "bias");
  expect_values(bn.weight, {1, 1, 1}, 0);
  expect_values(bn.bias, {0, 0, 0}, 0);
  const auto buffers = bn.named_buffers();
  ASSERT_EQ(buffers.size(), 3u);
  EXPECT_EQ(buffers[0].first, "running_mean");
  EXPECT_EQ(buffers[1].first, "running_var");
  EXPECT_EQ(buffers[2].first, "num_batches_tracked");
  EXPECT_EQ(bn.num_batches_tracked.dtype(), kInt64);
  EXPECT_FALSE(bn.running_mean.requires_grad());
  const nn::StateDict state = bn.state_dict();
  EXPECT_EQ(state.size(), 5u);
  EXPECT_TRUE(state.count("running_var") && state.count("num_batches_tracked"));
  // Without affine or tracking: nothing of either kind.
  nn::BatchNormOptions bare;
  bare.affine = false;
  bare.track_running_stats = false;
  EXPECT_TRUE(nn::BatchNorm2d(3, bare).state_dict().empty());
  EXPECT_ERROR_WITH(nn::BatchNorm2d(0), "BatchNorm2d", "num_features");
}

TEST(BatchNorm2dModule, TrainUpdatesRunningStatsEvalUsesThem) {
  manual_seed(30);
  nn::BatchNormOptions o;
  o.dtype = kFloat64;
  nn::BatchNorm2d bn(2, o);
  const Tensor x = ops::add(randn({4, 2, 3, 3}, kFloat64), scalar_tensor(2.0, kFloat64));
  // Training: the batch statistics (each channel of the output has mean 0).
  const Tensor y_train = bn.forward(x);
  expect_values(y_train.mean({0, 2, 3}), {0, 0}, 1e-12);
  const Tensor batch_mean = x.mean({0, 2, 3}), batch_var = x.var({0, 2, 3});  // unbiased
  expect_values(bn.running_mean, ops::mul(batch_mean, scalar_tensor(0.1, kFloat64)).to_vector<double>(), 1e-12);
  expect_values(bn.running_var,
                ops::add(ops::mul(batch_var, scalar_tensor(0.1, kFloat64)), scalar_tensor(0.9, kFloat64))
                    .to_vector<double>(),
                1e-12);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);

  // Eval: the running statistics, which stay as they are.
  bn.eval();
  const std::vector<double> running_mean = bn.running_mean.to_vector<double>();
  const Tensor y_eval = bn.forward(x);
  const Tensor want = ops::batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, false);
  expect_values(y_eval, want.to_vector<double>(), 1e-12);
  EXPECT_GT(ops::abs(ops::sub(y_eval, y_train)).max().item(), 0.1);  // not the batch statistics
  expect_values(bn.running_mean, running_mean, 0);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // A single value per channel is fine in eval mode, not in training.
  EXPECT_EQ(bn.forward(ones({1, 2, 1, 1}, kFloat64)).sizes(), (Shape{1, 2, 1, 1}));
  bn.train();
  EXPECT_ERROR_WITH(bn.forward(ones({1, 2, 1, 1}, kFloat64)), "more than 1 value per channel");
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);  // a refused batch is not counted
  EXPECT_ERROR_WITH(bn.forward(ones({4, 2, 3}, kFloat64)), "BatchNorm2d", "4-D", "[4, 2, 3]");
  EXPECT_ERROR_WITH(bn.forward(ones({4, 3, 2, 2}, kFloat64)), "batch_norm", "running_mean", "[2]", "[4, 3, 2, 2]");
}

TEST(BatchNorm2dModule, CumulativeAverageWithoutMomentumAndNoTracking) {
  manual_seed(31);
  nn::BatchNormOptions o;
  o.dtype = kFloat64;
  o.momentum = std::nullopt;  // running stats = the plain average of every batch's statistics
  nn::BatchNorm2d bn(2, o);
  const Tensor a = randn({3, 2, 2, 2}, kFloat64), b = ops::mul(randn({3, 2, 2, 2}, kFloat64), scalar_tensor(3.0, kFloat64));
  bn.forward(a);
  bn.forward(b);
  const Tensor want = ops::mul(ops::add(a.mean({0, 2, 3}), b.mean({0, 2, 3})), scalar_tensor(0.5, kFloat64));
  expect_values(bn.running_mean, want.to_vector<double>(), 1e-12);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);

  // track_running_stats = false: batch statistics in eval mode too.
  nn::BatchNormOptions untracked;
  untracked.dtype = kFloat64;
  untracked.track_running_stats = false;
  nn::BatchNorm2d plain(2, untracked);
  plain.eval();
  expect_values(plain.forward(a).mean({0, 2, 3}), {0, 0}, 1e-12);
}

TEST(BatchNorm2dModule, StateDictRoundTripGivesTheSameEvalOutput) {
  manual_seed(32);
  nn::BatchNorm2d trained(3), fresh(3);
  for (int step = 0; step < 3; ++step) trained.forward(randn({4, 3, 5, 5}));
  trained.eval();
  const std::string path = ::testing::TempDir() + "/ctxpool_batch_norm.safetensors";
  nn::save_safetensors(path, trained.state_dict());
  fresh.load_state_dict(nn::load_safetensors(path));
  fresh.eval();
  const Tensor x = randn({2, 3, 5, 5});
  EXPECT_EQ(fresh.forward(x).to_vector<float>(), trained.forward(x).to_vector<float>());
  EXPECT_EQ(fresh.num_batches_tracked.item<int64_t>(), 3);
}

TEST(BatchNorm2dModule, GradcheckInASequentialWithPooling) {
  manual_seed(33);
  nn::BatchNormOptions o;
  o.dtype = kFloat64;
  auto net = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::BatchNorm2d>(2, o), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::AdaptiveAvgPool2d>(std::array<int64_t, 2>{1, 2})});
  EXPECT_GRADCHECK([net](const V& in) { return net->forward(in[0]); }, V{param({3, 2, 4, 4})});
  // The parameters get gradients.
  ops::sum(net->forward(randn({3, 2, 4, 4}, kFloat64))).backward();
  for (const Tensor& p : net->parameters()) EXPECT_TRUE(p.grad().defined());
}
