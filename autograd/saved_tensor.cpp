#include "autograd/saved_tensor.h"

#include "autograd/node.h"

namespace ctxpool::autograd {

SavedTensor::SavedTensor(const Tensor& t)
    : data_(t), saved_version_(t.defined() ? t.version() : 0), was_defined_(t.defined()) {}

SavedTensor::SavedTensor(const Tensor& output, const std::shared_ptr<Node>& node)
    : data_(output.detach()),
      saved_version_(output.version()),
      was_defined_(true),
      is_output_(true),
      output_nr_(output.output_nr()),
      node_(node) {}

Tensor SavedTensor::unpack(const char* op) const {
  if (!was_defined_) return Tensor();
  CTXPOOL_CHECK(data_.defined(), op, ": the tensors saved for backward were already freed: "
                "trying to backward through the graph a second time? Pass retain_graph=true to "
                "the first backward() if you need to call it twice");
  CTXPOOL_CHECK(data_.version() == saved_version_, op,
                ": a tensor of shape ", data_.sizes(), " ", data_.dtype(),
                " saved for backward was modified by an in-place operation (it is at version ",
                data_.version(), ", expected version ", saved_version_,
                "); clone() it before changing it in place");
  if (!is_output_) return data_;
  // Re-attach the output to the node that made it, as a fresh handle (no stored cycle).
  std::shared_ptr<Node> node = node_.lock();
  Tensor t = data_.detach();
  if (node) {
    t.get()->requires_grad = true;
    t.get()->grad_fn = node;
    t.get()->output_nr = output_nr_;
  }
  return t;
}

}  // namespace ctxpool::autograd
