#include "nn/parallel/communicator.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace ctxpool::nn::parallel {

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

#ifndef CTXPOOL_WITH_MPI
bool built_with_mpi() { return false; }

std::shared_ptr<Communicator> mpi_world(double) {
  detail::fail("distributed: this build has no MPI (install libopenmpi-dev, e.g. with scripts/setup.sh, and "
               "rebuild); without it ctxpool trains in one process");
}
#endif

}  // namespace ctxpool::nn::parallel
