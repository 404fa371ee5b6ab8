// Gradient averaging that overlaps the backward pass, as PyTorch's DistributedDataParallel does.
//
// average_gradients (data_parallel.h) exchanges every gradient after backward has finished. The
// reducer instead groups the parameters into buckets in reverse registration order (roughly the
// order backward produces their gradients: the last layers first) and, through a hook on each
// parameter (autograd/hooks.h), starts a bucket's all-reduce as soon as backward has accumulated its
// last gradient, so the exchange of the late layers runs while the early layers are still computing.
//
//   nn::parallel::GradientReducer reducer(model.parameters(), comm);
//   for (...) {
//     loss.backward();   // buckets start as their gradients become final
//     reducer.finish();  // waits for them (and starts any that did not fill): every .grad() is the average
//     optimizer.step();
//   }
//
// The result is what average_gradients gives: every process gets rank 0's sum, divided by the number
// of processes. Every process must run the same graph (the same parameters get gradients), and each
// backward must be followed by finish() before the next one.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "autograd/hooks.h"
#include "core/tensor.h"
#include "nn/parallel/communicator.h"

namespace ctxpool::nn::parallel {

class GradientReducer {
 public:
  // Parameters that do not require grad are left out. bucket_bytes: the size at which a bucket is
  // closed (a bucket also holds one dtype only).
  GradientReducer(const std::vector<Tensor>& params, std::shared_ptr<Communicator> comm,
                  size_t bucket_bytes = size_t(4) << 20);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After backward: starts the buckets that did not fill (a parameter without a gradient), waits for
  // all, and writes the averages back into the .grad() of the parameters.
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  // Of the last backward: how many buckets had started before finish() was called.
  size_t started_during_backward() const { return started_during_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;            // gradients accumulated in this backward
    Tensor buffer;               // the flattened gradients while they are exchanged
    std::unique_ptr<PendingCollective> pending;
  };
  void on_gradient(size_t param);
  void start(Bucket& bucket);
  std::vector<Tensor> gradients(const Bucket& bucket) const;  // .grad() of its parameters, undefined ones too

  std::vector<Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<bool> got_;          // per parameter: its gradient has come in this backward
  std::vector<autograd::HookId> hooks_;
  size_t started_ = 0, started_during_backward_ = 0;
};

}  // namespace ctxpool::nn::parallel
