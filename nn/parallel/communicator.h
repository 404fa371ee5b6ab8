// Collectives between the processes that train one model together (data parallelism). A process
// group is a Communicator: MPI's world when the program runs under mpirun with --distributed
// (nn/parallel/mpi_communicator.cpp), or the trivial group of one process otherwise, so a training
// loop has one code path whatever the number of processes.
//
// Every process must make the same calls in the same order (as with MPI itself). A collective that
// has not completed after the communicator's timeout stops the whole job with an error naming the
// call, so a process that died or hangs never leaves the others waiting forever.
#pragma once
#include <memory>
#include <string>

#include "core/tensor.h"

namespace ctxpool::nn::parallel {

// A collective under way (Communicator::all_reduce_sum_async). Its tensor must stay alive and
// untouched until it has finished.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Drives it on (MPI progresses only inside MPI calls) and says whether it has finished.
  virtual bool done() = 0;
  // Finishes it, under the communicator's deadline.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1; rank 0 writes checkpoints, metrics and logs
  virtual int size() const = 0;
  // Sums t over all processes, in place, on every process. t: contiguous CPU float32 or float64.
  virtual void all_reduce_sum(const Tensor& t) = 0;
  // all_reduce_sum started, to be finished later (so that other work runs meanwhile); the same
  // result. By default it runs at once and returns a finished collective.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(const Tensor& t);
  // Rank `root`'s t, in place on every process (same shape and dtype everywhere).
  virtual void broadcast(const Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Stops every process of the job with `message` (after an error on one of them: the others would
  // otherwise wait in their next collective).
  [[noreturn]] virtual void abort(const std::string& message) = 0;
  virtual std::string describe() const = 0;  // "MPI, 2 processes" / "1 process"
  // Whether collectives take tensors on `device` (CPU everywhere; a CUDA device with NCCL).
  virtual bool supports(const Device& device) const { return device.is_cpu(); }
};

// The group of this process alone: collectives are no-ops.
std::shared_ptr<Communicator> single_process();

// Whether this build has MPI (CMake found it; see README "Data-parallel training").
bool built_with_mpi();

// MPI's world, initialising MPI on first use (with MPI_THREAD_FUNNELED: only the main thread calls
// MPI). timeout_s bounds every collective; the world is made once, so the first call's timeout holds
// (a later call with another one is an error). A clear error in a build without MPI.
std::shared_ptr<Communicator> mpi_world(double timeout_s = 600.0);

}  // namespace ctxpool::nn::parallel
