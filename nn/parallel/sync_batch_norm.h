// Batch normalisation across the processes of a data-parallel job, as torch.nn.SyncBatchNorm.
//
// Each process holds 1/N of every batch. Plain BatchNorm2d would normalise with its shard's mean and
// variance, so N processes would not train like one process with the whole batch. With a
// communicator, the statistics are those of the whole batch: the per-channel sums are added over the
// processes (forward), and so are the sums that the backward pass needs (the adjoint of a sum over
// processes is the same sum over processes). The running statistics then agree on every process.
//
//   nn::parallel::convert_sync_batch_norm(model, comm);   // every BatchNorm2d in model, before training
//
// models::ImageTrainer does this when it trains with more than one process.
#pragma once
#include <memory>

#include "core/tensor.h"
#include "nn/module.h"
#include "nn/parallel/communicator.h"

namespace ctxpool::nn::parallel {

// x summed over the processes (the same result on each), differentiable: the gradient of x is the
// sum over the processes of the gradients of the result. Every process must call it, in the same
// order, in forward and (when it needs a gradient) in backward. Not twice differentiable.
Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<Communicator>& comm);

// ops::batch_norm in training mode with the statistics of the batch formed by every process's x
// [B_r, C, ...] (B_r may differ between processes): y, and running_mean / running_var (optional,
// both or neither) updated in place with the whole batch's mean and unbiased variance. Two
// collectives in forward, two in backward. With one process it is ops::batch_norm.
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, const std::shared_ptr<Communicator>& comm);

// Gives every BatchNorm2d in `model` (at any depth) the communicator, so that in training mode it
// normalises with the statistics of all processes' batches. Returns how many it converted.
int convert_sync_batch_norm(Module& model, const std::shared_ptr<Communicator>& comm);

}  // namespace ctxpool::nn::parallel
