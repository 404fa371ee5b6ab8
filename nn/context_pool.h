// ContextPool1d: adaptive context pooling for sequences (../shared/PAPER.md, docs/contextpool.md).
// A small predictor (two 1-D convolutions over the sequence, GELU between) reads the features and
// gives each token a pooling weight logit a_i and a support-size logit b_i; ops::context_pool1d then
// pools each token's window with those weights and Gaussian supports.
//   x [B, N, d] -> pooled [B, N, d]   (or x + pooled with residual)
#pragma once
#include <memory>

#include "nn/conv.h"
#include "ops/ops.h"

namespace ctxpool::nn {

struct ContextPool1dOptions {
  ops::ContextPool1dOptions pool;  // window K, causal, s_min, s_max, eps, mode, s_fixed
  int64_t hidden = 0;              // predictor width; 0: max(1, d / 4)
  int64_t kernel_size = 3;         // of both predictor convolutions (causal: left padding only)
  bool residual = false;           // out = x + pooled instead of pooled
  double lambda = 0.0;             // support regulariser: lambda * mean(s) as an auxiliary loss (mode full)
};

class ContextPool1d : public Module {
 public:
  ContextPool1d(int64_t dim, const ContextPool1dOptions& options = {}, DType dtype = kFloat32);
  // x [B, N, dim] -> [B, N, dim]
  Tensor forward(const Tensor& x) override;

  // lambda * mean(s) of the last forward, differentiable (undefined when lambda is 0 or before any
  // forward). The Trainer adds it to the loss.
  Tensor auxiliary_loss() const;
  // Means over the last forward's tokens (NaN before any forward): the support size s in tokens,
  // and the pooling weight w (1 in uniform mode). For logging.
  double mean_support() const;
  double mean_weight() const;
  // The support sizes s [B, N] of the last forward, detached (undefined before any forward).
  Tensor last_support() const { return last_support_.defined() ? last_support_.detach() : Tensor(); }

  const ContextPool1dOptions& options() const { return options_; }

  std::shared_ptr<Conv1d> conv1, conv2;  // the predictor (none in uniform mode, which needs no a, b)

 private:
  int64_t dim_ = 0;
  ContextPool1dOptions options_;
  Tensor last_support_;  // s [B, N] of the last forward (with its graph when lambda > 0)
  Tensor last_weight_;   // w [B, N], detached
};

}  // namespace ctxpool::nn
