#include "nn/parallel/gradient_reducer.h"

#include "autograd/grad_mode.h"
#include "core/profile.h"
#include "nn/parallel/data_parallel.h"

namespace ctxpool::nn::parallel {

GradientReducer::GradientReducer(const std::vector<Tensor>& params, std::shared_ptr<Communicator> comm,
                                 size_t bucket_bytes)
    : comm_(std::move(comm)) {
  CTXPOOL_CHECK(comm_ != nullptr, "GradientReducer: no communicator");
  for (size_t i = 0; i < params.size(); ++i) {
    CTXPOOL_CHECK(params[i].defined() && !params[i].grad_fn(), "GradientReducer: parameter ", i, " is ",
                  params[i].defined() ? "the result of an op, not a leaf" : "undefined");
    if (params[i].requires_grad()) params_.push_back(params[i]);  // frozen ones have nothing to exchange
  }
  bucket_of_.resize(params_.size());
  got_.assign(params_.size(), false);
  size_t bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {  // the last parameters' gradients come first
    const Tensor& p = params_[i];
    // One process exchanges nothing, so any device will do (a single-GPU run has no NCCL communicator).
    CTXPOOL_CHECK(comm_->size() == 1 || comm_->supports(p.device()), "GradientReducer: parameter ", i, " lives on ",
                  p.device(), ", which ", comm_->describe(), " cannot exchange (CUDA tensors need nccl_communicator)");
    const bool new_bucket = buckets_.empty() || bytes >= bucket_bytes ||
                            params_[buckets_.back().params.front()].dtype() != p.dtype();
    if (new_bucket) buckets_.emplace_back(), bytes = 0;
    buckets_.back().params.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    bytes += p.nbytes();
  }
  if (comm_->size() == 1) return;  // nothing to exchange: no hooks
  for (size_t i = 0; i < params_.size(); ++i)
    hooks_.push_back(autograd::register_post_accumulate_grad_hook(params_[i], [this, i] { on_gradient(i); }));
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < hooks_.size(); ++i) autograd::remove_post_accumulate_grad_hook(params_[i], hooks_[i]);
}

void GradientReducer::on_gradient(size_t param) {
  CTXPOOL_CHECK(!got_[param], "GradientReducer: parameter ", param, " got a second gradient before finish(); call "
                "finish() after every backward");
  got_[param] = true;
  Bucket& bucket = buckets_[bucket_of_[param]];
  if (++bucket.ready == bucket.params.size()) {
    start(bucket);
    ++started_;
  }
  // Drive the buckets under way (MPI progresses them only inside its calls).
  for (Bucket& b : buckets_)
    if (b.pending) b.pending->done();
}

std::vector<Tensor> GradientReducer::gradients(const Bucket& bucket) const {
  std::vector<Tensor> grads;
  for (size_t i : bucket.params) grads.push_back(params_[i].grad());
  return grads;
}

void GradientReducer::start(Bucket& bucket) {
  bucket.buffer = flatten_gradients(gradients(bucket));
  // (no parameter of the bucket got a gradient: the same on every process, nothing to exchange)
  if (bucket.buffer.defined()) bucket.pending = comm_->all_reduce_sum_async(bucket.buffer);
}

void GradientReducer::finish() {
  if (comm_->size() == 1) return;
  autograd::NoGradGuard no_grad;
  const profile::PhaseScope phase(profile::Phase::Backward);  // part of the backward, for CTXPOOL_PROFILE
  started_during_backward_ = started_;
  started_ = 0;
  got_.assign(params_.size(), false);
  for (Bucket& b : buckets_)
    if (!b.pending && b.ready < b.params.size()) start(b);  // in bucket order: the same on every process
  for (Bucket& b : buckets_) {
    if (b.pending) {
      b.pending->wait();
      write_back_average(b.buffer, gradients(b), comm_->size());
    }
    b.pending.reset();
    b.buffer = Tensor();
    b.ready = 0;
  }
}

}  // namespace ctxpool::nn::parallel
