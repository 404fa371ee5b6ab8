// The whole batch's statistics from per-process sums, then the composite of ops/batch_norm.cpp:
//
//   mean = allreduce(sum x) / n                   (n: the values per channel over every process)
//   var  = allreduce(sum (x - mean)^2) / n        (two passes: no cancellation in E[x^2] - mean^2)
//   y    = (x - mean) * rsqrt(var + eps) * weight + bias
//
// Autograd differentiates the composite; the all-reduces bring the other processes' share of each
// channel's gradient sums.
#include "nn/parallel/sync_batch_norm.h"

#include "autograd/grad_mode.h"
#include "autograd/record.h"
#include "nn/batch_norm.h"
#include "ops/ops.h"

namespace ctxpool::nn::parallel {

namespace {

// A copy of t that owns contiguous memory (collectives work in place).
Tensor owned_copy(const Tensor& t) {
  autograd::NoGradGuard no_grad;
  return ops::contiguous(t.detach()).clone();
}

void update_running(const Tensor& running, const Tensor& stat, double momentum) {
  autograd::NoGradGuard no_grad;
  ops::copy_(running, ops::add(ops::mul(running, ops::scalar_like(1.0 - momentum, running)),
                               ops::mul(stat.detach(), ops::scalar_like(momentum, running))));
}

}  // namespace

Tensor all_reduce_sum(const Tensor& x, const std::shared_ptr<Communicator>& comm) {
  CTXPOOL_CHECK(x.defined(), "all_reduce_sum: x is undefined");
  CTXPOOL_CHECK(comm != nullptr, "all_reduce_sum: no communicator (x ", x.sizes(), ")");
  CTXPOOL_CHECK(comm->supports(x.device()), "all_reduce_sum: x ", x.sizes(), " ", x.dtype(), " on ", x.device(),
                " cannot go through ", comm->describe());
  Tensor out = owned_copy(x);
  comm->all_reduce_sum(out);
  return autograd::record("all_reduce_sum", {x}, out, [comm](const Tensor& grad, const autograd::LambdaNode&) {
    Tensor g = owned_copy(grad);
    comm->all_reduce_sum(g);
    return std::vector<Tensor>{g};
  });
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, const std::shared_ptr<Communicator>& comm) {
  CTXPOOL_CHECK(comm != nullptr, "sync_batch_norm: no communicator (x ",
                x.defined() ? shape_str(x.sizes()) : std::string("undefined"), ")");
  if (comm->size() == 1) return ops::batch_norm(x, running_mean, running_var, weight, bias, true, momentum, eps);
  CTXPOOL_CHECK(x.defined() && x.dim() >= 2 && x.sizes()[1] > 0 && (x.dtype() == kFloat32 || x.dtype() == kFloat64),
                "sync_batch_norm: expected a float32 or float64 x [B, C, ...] with at least 2 dims and C > 0, got ",
                x.defined() ? shape_str(x.sizes()) : std::string("undefined"), x.defined() ? " " : "",
                x.defined() ? dtype_name(x.dtype()) : "");
  const std::pair<const Tensor*, const char*> vectors[] = {
      {&running_mean, "running_mean"}, {&running_var, "running_var"}, {&weight, "weight"}, {&bias, "bias"}};
  for (const auto& [t, what] : vectors) {
    CTXPOOL_CHECK(!t->defined() || (t->sizes() == Shape{x.sizes()[1]} && t->dtype() == x.dtype() &&
                                    t->device() == x.device()),
                  "sync_batch_norm: ", what, " should be [", x.sizes()[1], "] ", x.dtype(), " on ", x.device(),
                  " (the channels of x ", x.sizes(), "), got ", t->sizes(), " ", t->dtype(), " on ", t->device());
  }
  CTXPOOL_CHECK(eps >= 0, "sync_batch_norm: eps must be non-negative, got ", eps);
  CTXPOOL_CHECK(running_mean.defined() == running_var.defined(), "sync_batch_norm: running_mean and running_var "
                "must be given together (x ", x.sizes(), ")");
  const int64_t channels = x.sizes()[1];
  std::vector<int64_t> dims;
  Shape stat_shape(static_cast<size_t>(x.dim()), 1);  // [1, C, 1, ...]: broadcasts over x
  stat_shape[1] = channels;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);

  // The per-channel sums and the value count, summed over the processes in one collective.
  const double local_count = static_cast<double>(x.numel() / channels);
  const Tensor count_entry = full({1}, local_count, TensorOptions(x.dtype()).device(x.device()));
  const Tensor totals = all_reduce_sum(ops::cat({ops::sum(x, dims), count_entry}, 0), comm);
  const double count = ops::slice(totals, 0, channels, channels + 1).item();
  CTXPOOL_CHECK(count > 1, "sync_batch_norm: expected more than 1 value per channel over all processes when "
                "training, got ", count, " (x ", x.sizes(), " on this process)");
  const Tensor mean = ops::div(ops::slice(totals, 0, 0, channels), ops::scalar_like(count, totals));
  const Tensor centered = ops::sub(x, ops::reshape(mean, stat_shape));
  const Tensor var = ops::div(all_reduce_sum(ops::sum(ops::mul(centered, centered), dims), comm),
                              ops::scalar_like(count, totals));
  if (running_mean.defined()) {
    update_running(running_mean, mean, momentum);
    update_running(running_var, ops::mul(var.detach(), ops::scalar_like(count / (count - 1), var)), momentum);
  }
  Tensor scale = ops::rsqrt(ops::add(var, ops::scalar_like(eps, var)));
  if (weight.defined()) scale = ops::mul(scale, weight);
  Tensor y = ops::mul(centered, ops::reshape(scale, stat_shape));
  if (bias.defined()) y = ops::add(y, ops::reshape(bias, stat_shape));
  return y;
}

int convert_sync_batch_norm(Module& model, const std::shared_ptr<Communicator>& comm) {
  int converted = 0;
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&model)) {
    bn->communicator = comm;
    ++converted;
  }
  for (const auto& [name, child] : model.named_children()) converted += convert_sync_batch_norm(*child, comm);
  return converted;
}

}  // namespace ctxpool::nn::parallel
