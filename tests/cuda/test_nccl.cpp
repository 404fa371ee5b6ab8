// The NCCL communicator (nn/parallel/nccl_communicator.h). With one GPU, NCCL runs its single-rank
// collectives: the values must come back unchanged, CPU tensors must go to the bootstrap
// communicator, and a data-parallel training run on that communicator must train as without it.
// Multi-GPU runs need several devices (mpirun -np N ctxpool-train ... --distributed --device cuda).
#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_run.h"
#include "models/trainer.h"
#include "nn/parallel/data_parallel.h"
#include "nn/parallel/nccl_communicator.h"

using namespace ctxpool;
using namespace ctxpool::testing;
namespace dp = ctxpool::nn::parallel;

namespace {
std::shared_ptr<dp::Communicator> single_gpu_nccl() {
  static auto comm = dp::nccl_communicator(dp::single_process(), 0, 30.0);
  return comm;
}
}  // namespace

TEST(Nccl, WithoutNcclBuildIsAClearError) {
  if (dp::built_with_nccl()) GTEST_SKIP() << "this build has NCCL";
  EXPECT_ERROR_WITH(dp::nccl_communicator(dp::single_process(), 0), "no NCCL", "--device cpu");
}

TEST(Nccl, LocalRankComesFromTheLauncher) {
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
  EXPECT_EQ(dp::local_rank(7), 3);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3x", 1);
  EXPECT_ERROR_WITH(dp::local_rank(7), "OMPI_COMM_WORLD_LOCAL_RANK", "3x");
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_EQ(dp::local_rank(7), 7);
}

TEST(Nccl, SingleRankCollectivesLeaveValues) {
  if (!ops::cuda_is_available() || !dp::built_with_nccl()) GTEST_SKIP() << "needs a CUDA device and NCCL";
  auto comm = single_gpu_nccl();
  EXPECT_EQ(comm->size(), 1);
  EXPECT_TRUE(comm->supports(cuda_device(0)));
  EXPECT_TRUE(comm->supports(kCPU));
  for (DType dtype : {kFloat32, kFloat64}) {
    const Tensor host = randn({1000, 37}, dtype);
    const Tensor t = host.to(cuda_device(0));
    comm->all_reduce_sum(t);
    comm->broadcast(t, 0);
    EXPECT_TRUE(ops::eq(t.to(kCPU), host).to(kInt64).sum().item<int64_t>() == host.numel()) << dtype;
  }
  const Tensor counts = from_vector(std::vector<int64_t>{1, -2, 3}, {3}, kInt64).to(cuda_device(0));
  comm->all_reduce_sum(counts);
  EXPECT_EQ(counts.to(kCPU).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  const Tensor cpu = from_vector(std::vector<double>{2.5}, {1}, kFloat64);  // through the bootstrap
  comm->all_reduce_sum(cpu);
  EXPECT_EQ(cpu.item(), 2.5);
  EXPECT_ERROR_WITH(comm->all_reduce_sum(randn({4, 3}).to(cuda_device(0)).t()), "all_reduce_sum", "contiguous");
}

TEST(Nccl, AverageGradientsOnTheGpu) {
  if (!ops::cuda_is_available() || !dp::built_with_nccl()) GTEST_SKIP() << "needs a CUDA device and NCCL";
  auto comm = single_gpu_nccl();
  Tensor p = randn({64, 32}).to(cuda_device(0)).requires_grad_(true);
  ops::sum(ops::mul(p, p)).backward();
  const Tensor before = p.grad().to(kCPU);
  dp::average_gradients({p}, *comm);  // one process: a no-op by design, but the device check runs
  EXPECT_TRUE(ops::eq(p.grad().to(kCPU), before).to(kInt64).sum().item<int64_t>() == before.numel());
  dp::broadcast_parameters({p}, *comm);
}

TEST(Nccl, TrainerAcceptsTheNcclCommunicator) {
  if (!ops::cuda_is_available() || !dp::built_with_nccl()) GTEST_SKIP() << "needs a CUDA device and NCCL";
  TinyRun run("nccl_trainer", 5);
  run.cfg.train.device = "cuda:0";
  models::Trainer trainer(run.cfg, false, single_gpu_nccl());
  trainer.fit();
  ASSERT_EQ(trainer.history().size(), 5u);
  EXPECT_LT(trainer.history().back().train_loss, trainer.history().front().train_loss);
}
