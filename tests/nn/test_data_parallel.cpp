// Data parallelism's pieces in one process (the real multi-process check runs under mpirun:
// tests/dist/dist_train_check.cpp): gradient averaging in buckets, during backward too (the
// GradientReducer), parameter broadcast, batch shards, and the trivial group of one process.
#include "helpers/test_utils.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/data_parallel.h"
#include "nn/parallel/gradient_reducer.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using nn::parallel::Communicator;

namespace {

// A stand-in for rank `rank` of two processes whose peer contributes zeros: a sum over the group
// leaves every value as it is, so an average halves it. Counts the collectives.
class PeerOfZeros : public Communicator {
 public:
  explicit PeerOfZeros(int rank) : rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  void all_reduce_sum(const Tensor&) override { ++reduces; }
  void broadcast(const Tensor&, int) override { ++broadcasts; }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override { detail::fail(message); }
  std::string describe() const override { return "a peer of zeros"; }
  int reduces = 0, broadcasts = 0;

 private:
  int rank_;
};

std::vector<Tensor> params_with_grads() {
  std::vector<Tensor> params = {param({3, 4}), param({4}), param({2, 2})};
  for (Tensor& p : params) ops::sum(ops::mul(p, p)).backward();  // grad = 2 p
  return params;
}

}  // namespace

TEST(DataParallel, AveragingWritesTheMeanBackIntoEveryGradient) {
  auto params = params_with_grads();
  std::vector<std::vector<double>> half;
  for (const Tensor& p : params) {
    half.push_back(p.grad().to_vector<double>());
    for (double& v : half.back()) v /= 2;  // (g + 0) / 2
  }
  PeerOfZeros comm(0);
  nn::parallel::average_gradients(params, comm);
  for (size_t i = 0; i < params.size(); ++i) expect_values(params[i].grad(), half[i]);
  EXPECT_EQ(comm.reduces, 1);  // all three in one bucket
}

TEST(DataParallel, BucketsSplitBySizeAndDtype) {
  auto params = params_with_grads();
  PeerOfZeros small(0);
  nn::parallel::average_gradients(params, small, 16);  // 16 bytes: every gradient is a bucket of its own
  EXPECT_EQ(small.reduces, 3);
  std::vector<Tensor> mixed = {param({2}), randn({2}).requires_grad_(true)};  // float64, float32
  for (Tensor& p : mixed) ops::sum(p).backward();
  PeerOfZeros comm(0);
  nn::parallel::average_gradients(mixed, comm);
  EXPECT_EQ(comm.reduces, 2);
  expect_values(mixed[0].grad(), {0.5, 0.5});
  expect_values(mixed[1].grad(), {0.5, 0.5});
}

TEST(DataParallel, ParametersWithoutGradientsAreSkipped) {
  std::vector<Tensor> params = {param({2}), param({3})};
  ops::sum(params[0]).backward();
  PeerOfZeros comm(0);
  nn::parallel::average_gradients(params, comm);
  EXPECT_FALSE(params[1].grad().defined());
  expect_values(params[0].grad(), {0.5, 0.5});
}

TEST(DataParallel, BroadcastVisitsEveryParameter) {
  auto params = params_with_grads();
  PeerOfZeros comm(1);
  nn::parallel::broadcast_parameters(params, comm);
  EXPECT_EQ(comm.broadcasts, 3);
}

TEST(DataParallel, ShardsAreContiguousRowBlocks) {
  const Tensor batch = arange(8, kFloat64).reshape({4, 2});
  expect_values(nn::parallel::shard_rows(batch, PeerOfZeros(0)), {0, 1, 2, 3});
  expect_values(nn::parallel::shard_rows(batch, PeerOfZeros(1)), {4, 5, 6, 7});
  EXPECT_ERROR_WITH(nn::parallel::shard_rows(arange(3, kFloat64), PeerOfZeros(0)),
                    "the batch of 3 rows does not split evenly over 2 processes");
}

TEST(DataParallel, OneProcessIsAGroupToo) {
  auto one = nn::parallel::single_process();
  EXPECT_EQ(one->rank(), 0);
  EXPECT_EQ(one->size(), 1);
  auto params = params_with_grads();
  const auto before = params[0].grad().to_vector<double>();
  nn::parallel::average_gradients(params, *one);
  expect_values(params[0].grad(), before);
  expect_values(nn::parallel::shard_rows(arange(3, kFloat64), *one), {0, 1, 2});
  EXPECT_ERROR_WITH(one->broadcast(ones({1}), 1), "root 1 does not exist");
}

TEST(DataParallel, WithoutMpiDistributedIsAClearError) {
  if (nn::parallel::built_with_mpi()) GTEST_SKIP() << "this build has MPI (tests/dist/ runs it under mpirun)";
  EXPECT_ERROR_WITH(nn::parallel::mpi_world(), "this build has no MPI");
}

// A chain of three layers: backward produces the last one's gradient first.
struct Chain {
  std::vector<Tensor> params = {param({3}), param({3}), param({3})};
  void backward() const {
    Tensor h = ops::tanh(ops::mul(params[0], ops::scalar_like(0.5, params[0])));
    h = ops::tanh(ops::mul(h, params[1]));
    ops::sum(ops::mul(h, params[2])).backward();
  }
};

TEST(GradientReducer, AveragesLikeAverageGradientsAndStartsBucketsDuringBackward) {
  manual_seed(4);
  Chain chain;
  chain.backward();
  std::vector<std::vector<double>> half;
  for (const Tensor& p : chain.params) {
    half.push_back(p.grad().to_vector<double>());
    for (double& v : half.back()) v /= 2;  // (g + 0) / 2
  }
  for (const Tensor& p : chain.params) p.set_grad(Tensor());
  auto comm = std::make_shared<PeerOfZeros>(0);
  nn::parallel::GradientReducer reducer(chain.params, comm, 24);  // 3 float64 per bucket: one each
  EXPECT_EQ(reducer.num_buckets(), 3u);
  chain.backward();
  EXPECT_EQ(comm->reduces, 3);  // all three started by the hooks, before backward returned
  reducer.finish();
  EXPECT_EQ(reducer.started_during_backward(), 3u);
  for (size_t i = 0; i < 3; ++i) expect_values(chain.params[i].grad(), half[i], 1e-15);
}

TEST(GradientReducer, BucketsThatDoNotFillStartInFinish) {
  std::vector<Tensor> params = {param({2}), param({3})};
  auto comm = std::make_shared<PeerOfZeros>(0);
  nn::parallel::GradientReducer reducer(params, comm);  // one bucket for both
  ops::sum(params[0]).backward();                        // params[1] gets no gradient
  EXPECT_EQ(comm->reduces, 0);
  reducer.finish();
  EXPECT_EQ(comm->reduces, 1);
  EXPECT_EQ(reducer.started_during_backward(), 0u);
  expect_values(params[0].grad(), {0.5, 0.5});
  EXPECT_FALSE(params[1].grad().defined());
}

TEST(GradientReducer, ASecondBackwardBeforeFinishIsAnError) {
  std::vector<Tensor> params = {param({2})};
  nn::parallel::GradientReducer reducer(params, std::make_shared<PeerOfZeros>(0));
  ops::sum(params[0]).backward();
  EXPECT_ERROR_WITH(ops::sum(params[0]).backward(), "GradientReducer", "second gradient before finish()");
}

TEST(GradientReducer, WithOneProcessItLeavesGradientsAloneAndHooksNothing) {
  auto params = params_with_grads();
  const auto before = params[0].grad().to_vector<double>();
  {
    nn::parallel::GradientReducer reducer(params, nn::parallel::single_process());
    reducer.finish();
    EXPECT_TRUE(params[0].get()->post_accumulate_grad_hooks.empty());
  }
  expect_values(params[0].grad(), before);
}

TEST(GradientReducer, RemovesItsHooksWhenDestroyed) {
  std::vector<Tensor> params = {param({2})};
  {
    nn::parallel::GradientReducer reducer(params, std::make_shared<PeerOfZeros>(0));
    EXPECT_EQ(params[0].get()->post_accumulate_grad_hooks.size(), 1u);
  }
  EXPECT_TRUE(params[0].get()->post_accumulate_grad_hooks.empty());
  ops::sum(params[0]).backward();  // no hook into a destroyed reducer
  expect_values(params[0].grad(), {1, 1});
}
