#include "nn/parallel/communicator.h"
#include "nn/parallel/nccl_communicator.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace ctxpool::nn::parallel {

namespace {

class Finished : public PendingCollective {
 public:
  bool done() override { return true; }
  void wait() override {}
};

}  // namespace

std::unique_ptr<PendingCollective> Communicator::all_reduce_sum_async(const Tensor& t) {
  all_reduce_sum(t);
  return std::make_unique<Finished>();
}

namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(const Tensor&) override {}
  void broadcast(const Tensor&, int root) override {
    CTXPOOL_CHECK(root == 0, "broadcast: root ", root, " does not exist in a group of 1 process");
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(1);
  }
  std::string describe() const override { return "1 process"; }
};

}  // namespace

std::shared_ptr<Communicator> single_process() {
  static const auto group = std::make_shared<SingleProcess>();
  return group;
}

int local_rank(int rank) {
  // Open MPI, MPICH / Intel MPI, Slurm, and torchrun-style launchers.
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    char* end = nullptr;
    const long parsed = std::strtol(value, &end, 10);
    CTXPOOL_CHECK(*end == '\0' && parsed >= 0 && parsed < 1 << 20, "distributed: the environment variable ", name,
                  "='", value, "' is not a local rank");
    return static_cast<int>(parsed);
  }
  return rank;
}

#ifndef CTXPOOL_WITH_NCCL
bool built_with_nccl() { return false; }

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator>, int, double) {
  detail::fail("distributed: this build has no NCCL, so CUDA tensors cannot be exchanged between processes "
               "(build with the CUDA toolkit and nccl.h; CMake looks beside the toolkit's headers, or set "
               "CTXPOOL_NCCL_INCLUDE_DIR); train on the CPU (--device cpu) or in one process");
}
#endif

#ifndef CTXPOOL_WITH_MPI
bool built_with_mpi() { return false; }

std::shared_ptr<Communicator> mpi_world(double) {
  detail::fail("distributed: this build has no MPI (install libopenmpi-dev, e.g. with scripts/setup.sh, and "
               "rebuild); without it ctxpool trains in one process");
}
#endif

}  // namespace ctxpool::nn::parallel
