// Batch normalisation across processes (nn/parallel/sync_batch_norm.h), in one process: against a
// stand-in peer that holds the same batch as this process, the synced op must normalise with the
// statistics of both batches together and send back the gradient of both processes' losses. The real
// multi-process check (2 processes train a ConvNet like 1) runs under mpirun: tests/dist/.
#include "helpers/test_utils.h"
#include "models/convnet.h"
#include "nn/batch_norm.h"
#include "nn/parallel/sync_batch_norm.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using nn::parallel::Communicator;

namespace {

// Rank 0 of two processes whose peer holds exactly this process's values: a sum over the group
// doubles every value. Counts the collectives.
class MirrorPeer : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void all_reduce_sum(const Tensor& t) override {
    ++reduces;
    Tensor(t).mul_(2.0);  // (the handle is const; the values are not)
  }
  void broadcast(const Tensor&, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override { detail::fail(message); }
  std::string describe() const override { return "a mirror peer"; }
  int reduces = 0;
};

struct Inputs {
  Tensor x, weight, bias, upstream;
};

Inputs make_inputs() {
  manual_seed(3);
  return {param({3, 4, 2, 5}), param({4}), param({4}), randn({3, 4, 2, 5}, kFloat64)};
}

}  // namespace

TEST(SyncBatchNorm, WithOneProcessItIsBatchNorm) {
  const Inputs in = make_inputs();
  Tensor rm = zeros({4}, kFloat64), rv = ones({4}, kFloat64), rm_ref = zeros({4}, kFloat64), rv_ref = ones({4}, kFloat64);
  const Tensor y = nn::parallel::sync_batch_norm(in.x, rm, rv, in.weight, in.bias, 0.1, 1e-5,
                                                 nn::parallel::single_process());
  const Tensor ref = ops::batch_norm(in.x, rm_ref, rv_ref, in.weight, in.bias, true, 0.1, 1e-5);
  expect_values(y, ref.to_vector<double>(), 0);
  expect_values(rv, rv_ref.to_vector<double>(), 0);
}

TEST(SyncBatchNorm, NormalisesWithEveryProcesssBatchAndReturnsTheirGradients) {
  const Inputs in = make_inputs();
  auto peer = std::make_shared<MirrorPeer>();
  Tensor rm = zeros({4}, kFloat64), rv = ones({4}, kFloat64);
  const Tensor y = nn::parallel::sync_batch_norm(in.x, rm, rv, in.weight, in.bias, 0.1, 1e-5, peer);
  EXPECT_EQ(peer->reduces, 2);  // the sums with the count, then the squared deviations
  ops::sum(ops::mul(y, in.upstream)).backward();
  EXPECT_EQ(peer->reduces, 4);  // and their adjoints
  const Tensor x_grad = in.x.grad().clone(), w_grad = in.weight.grad().clone(), b_grad = in.bias.grad().clone();

  // The reference: one process with both batches (the peer's a copy with its own gradient), and the
  // loss of both processes.
  const Tensor mine = in.x.detach().clone().requires_grad_(true), theirs = in.x.detach().clone().requires_grad_(true);
  Tensor w = in.weight.detach().clone().requires_grad_(true), b = in.bias.detach().clone().requires_grad_(true);
  Tensor rm_ref = zeros({4}, kFloat64), rv_ref = ones({4}, kFloat64);
  const Tensor both = ops::batch_norm(ops::cat({mine, theirs}, 0), rm_ref, rv_ref, w, b, true, 0.1, 1e-5);
  expect_values(y, ops::slice(both, 0, 0, 3).to_vector<double>(), 1e-12);
  expect_values(rm, rm_ref.to_vector<double>(), 1e-14);
  expect_values(rv, rv_ref.to_vector<double>(), 1e-14);  // unbiased over 2 x 30 values, not 30
  ops::sum(ops::mul(both, ops::cat({in.upstream, in.upstream}, 0))).backward();
  // x: the gradient of both losses (through the statistics, the peer's loss depends on x too).
  expect_values(x_grad, mine.grad().to_vector<double>(), 1e-12);
  // weight and bias: this process's loss only (averaging over the processes then gives the whole).
  expect_values(ops::mul(w_grad, ops::scalar_like(2.0, w_grad)), w.grad().to_vector<double>(), 1e-12);
  expect_values(ops::mul(b_grad, ops::scalar_like(2.0, b_grad)), b.grad().to_vector<double>(), 1e-12);
}

// With a mirror peer, perturbing x perturbs the peer's batch alike, and the analytic gradient (this
// process's loss plus the peer's, through the all-reduces) equals the derivative of that function.
TEST(SyncBatchNorm, Gradcheck) {
  const Inputs in = make_inputs();
  auto peer = std::make_shared<MirrorPeer>();
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& t) {
    return nn::parallel::sync_batch_norm(t[0], Tensor(), Tensor(), t[1], t[2], 0.1, 1e-5, peer);
  }, {in.x, in.weight, in.bias});
}

TEST(SyncBatchNorm, AllReduceSumIsDifferentiable) {
  manual_seed(1);
  auto peer = std::make_shared<MirrorPeer>();
  const Tensor x = param({5});
  const Tensor y = nn::parallel::all_reduce_sum(x, peer);
  expect_values(y, ops::mul(x, ops::scalar_like(2.0, x)).to_vector<double>(), 0);
  ops::sum(y).backward();
  expect_values(x.grad(), std::vector<double>(5, 2.0), 0);  // this process's 1 and the peer's 1
  EXPECT_FALSE(x.is_same(y));
}

TEST(SyncBatchNorm, ConvertGivesEveryBatchNormTheCommunicatorAndEvaluationIgnoresIt) {
  models::ModelConfig c;
  c.type = "convnet";
  c.image.in_channels = 1;
  c.image.image_size = 8;
  c.image.num_classes = 10;
  c.image.channels = {4, 8};
  c.image.convs_per_stage = 2;
  models::ConvNet net(c);
  auto peer = std::make_shared<MirrorPeer>();
  EXPECT_EQ(nn::parallel::convert_sync_batch_norm(net, peer), 4);
  nn::BatchNorm2d bn(3, {.dtype = kFloat64});
  nn::parallel::convert_sync_batch_norm(bn, peer);
  manual_seed(2);
  const Tensor x = randn({2, 3, 4, 4}, kFloat64);
  bn.forward(x);
  EXPECT_EQ(peer->reduces, 2);  // training: synced
  bn.eval();
  const Tensor y = bn.forward(x);
  EXPECT_EQ(peer->reduces, 2);  // evaluation: the running statistics, no collective
  expect_values(y, ops::batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias).to_vector<double>(), 0);
}

TEST(SyncBatchNorm, BadInputsNameTheOpAndShapes) {
  auto peer = std::make_shared<MirrorPeer>();
  const Tensor x = randn({2, 3, 4, 4}, kFloat64);
  EXPECT_ERROR_WITH(nn::parallel::sync_batch_norm(x, Tensor(), Tensor(), ones({4}, kFloat64), Tensor(), 0.1, 1e-5, peer),
                    "sync_batch_norm", "weight", "[3]", "[4]");
  EXPECT_ERROR_WITH(nn::parallel::sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, nullptr),
                    "sync_batch_norm", "no communicator");
  EXPECT_ERROR_WITH(nn::parallel::sync_batch_norm(randn({1, 3, 1, 1}, kFloat64), zeros({3}, kFloat64), Tensor(),
                                                  Tensor(), Tensor(), 0.1, 1e-5, peer),
                    "sync_batch_norm", "running_mean and running_var");
}
