// BatchNorm2d, as torch.nn.BatchNorm2d: x [B, C, H, W] normalised per channel with the batch's
// statistics while training (which also update the running ones) and the running statistics in
// eval mode. weight (ones) and bias (zeros) are parameters; running_mean (zeros), running_var (ones)
// and num_batches_tracked (int64, 0) are buffers, so they are in state_dict and follow to(device).
// With a communicator of several processes (data parallelism), training uses the statistics of every
// process's batch together, as torch.nn.SyncBatchNorm (nn/parallel/sync_batch_norm.h).
#pragma once
#include <memory>
#include <optional>

#include "nn/module.h"

namespace ctxpool::nn::parallel {
class Communicator;
}

namespace ctxpool::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  // The weight of each new batch in the running statistics; nullopt: a cumulative average
  // (1 / num_batches_tracked), as PyTorch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;               // learn weight and bias
  bool track_running_stats = true;  // false: no buffers, and batch statistics in eval mode too
  DType dtype = kFloat32;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {});
  // x [B, C, H, W] -> same shape
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;                                     // [C], undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined unless track_running_stats
  int64_t num_features;
  BatchNormOptions options;
  // Set by nn::parallel::convert_sync_batch_norm; null (or one process): this process's batch alone.
  std::shared_ptr<parallel::Communicator> communicator;
};

}  // namespace ctxpool::nn
