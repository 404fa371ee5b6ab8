// Data parallelism over a Communicator: every process holds the whole model, trains on its shard of
// each global batch, and before each optimizer step the gradients are averaged over the processes,
// so every process takes the same step and the replicas stay one model.
//
//   auto comm = nn::parallel::mpi_world();
//   nn::parallel::broadcast_parameters(model.parameters(), *comm);   // rank 0's weights everywhere
//   ...forward on this rank's rows of the batch, loss (the mean over those rows), backward...
//   nn::parallel::average_gradients(model.parameters(), *comm);      // then clip, optimizer.step()
//
// With equal shards, the average of the shards' mean-loss gradients is the gradient of the mean
// loss over the whole batch, so N processes take the steps one process would take with the whole
// batch (to rounding). models::Trainer does all of this when given a communicator.
#pragma once
#include <cstddef>
#include <vector>

#include "core/tensor.h"
#include "nn/parallel/communicator.h"

namespace ctxpool::nn::parallel {

// Averages the .grad() of `params` over the processes, in place. Gradients go in buckets of about
// bucket_bytes (consecutive parameters of one dtype, flattened into one buffer): one collective per
// bucket rather than per tensor. Parameters without a gradient are skipped (the same ones on every
// process: they run the same graph).
void average_gradients(const std::vector<Tensor>& params, Communicator& comm, size_t bucket_bytes = size_t(4) << 20);

// One bucket's exchange, the part average_gradients and GradientReducer share: the defined gradients
// among `grads` flattened into a new contiguous buffer (undefined ones are skipped), and, after the
// buffer has been summed over the processes, its average written back into those gradients.
Tensor flatten_gradients(const std::vector<Tensor>& grads);
void write_back_average(Tensor buffer, const std::vector<Tensor>& grads, int processes);

// Rank `root`'s values of every parameter, on every process.
void broadcast_parameters(const std::vector<Tensor>& params, Communicator& comm, int root = 0);

// Rows [rank * n / size, (rank + 1) * n / size) of a batch of n (its dim 0): this process's shard.
// n must be divisible by the number of processes (a clear error otherwise).
Tensor shard_rows(const Tensor& batch, const Communicator& comm);

}  // namespace ctxpool::nn::parallel
