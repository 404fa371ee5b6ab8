#include "nn/parallel/data_parallel.h"

#include "autograd/grad_mode.h"
#include "core/profile.h"
#include "ops/ops.h"

namespace ctxpool::nn::parallel {

Tensor flatten_gradients(const std::vector<Tensor>& grads) {
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> flat;
  for (const Tensor& g : grads)
    if (g.defined()) flat.push_back(ops::reshape(g, {-1}));
  if (flat.empty()) return Tensor();
  return flat.size() == 1 ? ops::contiguous(flat[0]).clone() : ops::cat(flat, 0);
}

void write_back_average(Tensor buffer, const std::vector<Tensor>& grads, int processes) {
  autograd::NoGradGuard no_grad;
  buffer.mul_(1.0 / processes);
  int64_t offset = 0;
  for (Tensor g : grads) {
    if (!g.defined()) continue;
    g.copy_(ops::reshape(ops::slice(buffer, 0, offset, offset + g.numel()), g.sizes()));
    offset += g.numel();
  }
}

void average_gradients(const std::vector<Tensor>& params, Communicator& comm, size_t bucket_bytes) {
  if (comm.size() == 1) return;
  autograd::NoGradGuard no_grad;
  const profile::PhaseScope phase(profile::Phase::Backward);  // part of the backward, for CTXPOOL_PROFILE
  std::vector<Tensor> bucket;
  size_t bytes = 0;
  const auto flush = [&] {
    if (bucket.empty()) return;
    const Tensor buffer = flatten_gradients(bucket);
    comm.all_reduce_sum(buffer);
    write_back_average(buffer, bucket, comm.size());
    bucket.clear();
    bytes = 0;
  };
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    CTXPOOL_CHECK(comm.supports(g.device()), "average_gradients: gradients on ", g.device(), " cannot go through ",
                  comm.describe(), " (CUDA tensors need nccl_communicator, on their device)");
    if (!bucket.empty() && (bucket.front().dtype() != g.dtype() || bytes >= bucket_bytes)) flush();
    bucket.push_back(g);
    bytes += g.nbytes();
  }
  flush();
}

void broadcast_parameters(const std::vector<Tensor>& params, Communicator& comm, int root) {
  if (comm.size() == 1) return;
  autograd::NoGradGuard no_grad;
  for (const Tensor& p : params) {
    CTXPOOL_CHECK(p.is_contiguous(), "broadcast_parameters: parameter of shape ", p.sizes(), " is not contiguous");
    comm.broadcast(p, root);
    p.bump_version();
  }
}

Tensor shard_rows(const Tensor& batch, const Communicator& comm) {
  const int64_t n = batch.sizes().at(0), size = comm.size();
  CTXPOOL_CHECK(n % size == 0, "distributed: the batch of ", n, " rows does not split evenly over ", size,
                " processes (make train.batch_size a multiple of the process count)");
  const int64_t per = n / size;
  return ops::slice(batch, 0, comm.rank() * per, (comm.rank() + 1) * per);
}

}  // namespace ctxpool::nn::parallel
