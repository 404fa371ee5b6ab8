// A tensor saved for backward. It remembers the version of the data when saved, so that an in-place
// change before backward is a clear error instead of a silently wrong gradient.
//
// A node's own output is saved without its grad_fn (which would be a reference cycle node -> output ->
// node) and re-attached to the node when unpacked, so double backward through it still works.
#pragma once
#include <memory>

#include "core/tensor.h"

namespace ctxpool::autograd {

class Node;

class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  // For an output of `node`: keeps the data, re-attaches grad_fn = node on unpack.
  SavedTensor(const Tensor& output, const std::shared_ptr<Node>& node);

  // The saved tensor; an error naming `op` if it was modified in place since, or freed.
  Tensor unpack(const char* op) const;
  bool defined() const { return data_.defined() || was_defined_; }
  void reset() { data_ = Tensor(); }

 private:
  Tensor data_;
  uint64_t saved_version_ = 0;
  bool was_defined_ = false;
  bool is_output_ = false;
  uint32_t output_nr_ = 0;
  std::weak_ptr<Node> node_;
};

}  // namespace ctxpool::autograd
