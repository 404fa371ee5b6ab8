// Tensor: a cheap, copyable handle to a refcounted TensorImpl (storage + offset + sizes + strides +
// dtype + device + autograd fields). Copying a Tensor shares the data, as in PyTorch.
//
// The methods below that compute something (x.add(y), x + y, x.matmul(w), x.sum()) are declared here
// and defined in ops/ (like PyTorch's Tensor methods are defined by its op library), so core and
// autograd never include ops/.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace ctxpool {

namespace autograd {
class Node;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape sizes;
  Shape strides;  // in elements
  DType dtype = DType::Float32;

  // Autograd. A leaf has no grad_fn; a result of a recorded op has one (and output_nr says which of
  // that node's outputs it is). grad_accumulator caches a leaf's AccumulateGrad node.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  std::weak_ptr<autograd::Node> grad_accumulator;
  // Run after backward has accumulated this leaf's gradient, with their ids (autograd/hooks.h).
  std::vector<std::pair<uint64_t, std::function<void()>>> post_accumulate_grad_hooks;
  std::string name;  // optional label, shown by autograd::to_dot

  Device device() const { return storage ? storage->device() : kCPU; }
};

class TensorOptions {
 public:
  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}    // NOLINT: implicit on purpose, zeros({2}, kFloat64)
  TensorOptions(Device d) : device_(d) {}  // NOLINT
  TensorOptions dtype(DType d) const { auto o = *this; o.dtype_ = d; return o; }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r) const { auto o = *this; o.requires_grad_ = r; return o; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool requires_grad() const { return requires_grad_; }

 private:
  DType dtype_ = DType::Float32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  TensorImpl* get() const { return impl_.get(); }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata ----
  const Shape& sizes() const { return checked()->sizes; }
  const Shape& strides() const { return checked()->strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(sizes().size()); }
  int64_t numel() const { return shape_numel(sizes()); }
  int64_t storage_offset() const { return checked()->offset; }
  DType dtype() const { return checked()->dtype; }
  Device device() const { return checked()->device(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  size_t nbytes() const { return numel() * element_size(dtype()); }

  // ---- data ----
  // Typed pointer to the first element (storage + offset). The type must match the dtype.
  template <typename T> T* data_ptr() const;
  void* raw_data() const;
  // The value of a one-element tensor, as a double (copied from the device when needed).
  double item() const;
  template <typename T> T item() const { return static_cast<T>(item()); }
  // Element access for tests and small programs (CPU tensors).
  double at(const std::vector<int64_t>& index) const;
  // All elements in row-major order, converted to T (copied from the device when needed).
  template <typename T> std::vector<T> to_vector() const;

  // ---- autograd (defined in core/tensor.cpp and autograd/engine.cpp) ----
  bool requires_grad() const { return checked()->requires_grad; }
  // Marks a leaf as a parameter whose .grad() backward fills. Error on a non-leaf.
  Tensor& requires_grad_(bool requires_grad = true);
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return checked()->grad_fn; }
  uint32_t output_nr() const { return checked()->output_nr; }
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Same data, cut out of the graph: no grad_fn, requires_grad false.
  Tensor detach() const;
  // Version counter shared by all views of a storage; bumped by every in-place op.
  uint64_t version() const { return checked()->storage->version(); }
  void bump_version() const { checked()->storage->bump_version(); }
  Tensor& set_name(const std::string& name);
  const std::string& name() const { return checked()->name; }
  // Reverse-mode autodiff from this tensor. `grad` defaults to 1 for a one-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;

  // ---- ops (defined in ops/tensor_methods.cpp; see ops/ops.h for what each does) ----
  Tensor add(const Tensor& o) const;
  Tensor sub(const Tensor& o) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;
  Tensor pow(const Tensor& o) const;
  Tensor pow(double exponent) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor abs() const;
  Tensor clamp(double min, double max) const;
  Tensor eq(const Tensor& o) const;
  Tensor ne(const Tensor& o) const;
  Tensor lt(const Tensor& o) const;
  Tensor le(const Tensor& o) const;
  Tensor gt(const Tensor& o) const;
  Tensor ge(const Tensor& o) const;
  Tensor masked_fill(const Tensor& mask, double value) const;

  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  Tensor var(const std::vector<int64_t>& dims, bool keepdim = false, int64_t correction = 1) const;

  Tensor matmul(const Tensor& o) const;

  Tensor view(const Shape& sizes) const;
  Tensor reshape(const Shape& sizes) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& sizes) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;

  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor cpu() const { return to(kCPU); }
  Tensor clone() const;

  // In-place ops: change the data, bump the version; refused on tensors that need grad while
  // grad mode is on (autograd cannot see through them).
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);
  Tensor& add_(const Tensor& o, double alpha = 1.0);
  Tensor& mul_(double factor);

  // Makes this tensor hold src's data (same sizes and dtype; any device), keeping its identity: every
  // handle to it, its name and requires_grad follow, and its gradient is dropped. Module::to uses it,
  // so that a layer's own handles to its parameters see them on the new device.
  void set_data_(const Tensor& src);

 private:
  TensorImpl* checked() const {
    CTXPOOL_CHECK(impl_ != nullptr, "tensor: operation on an undefined (empty handle) Tensor");
    return impl_.get();
  }
  std::shared_ptr<TensorImpl> impl_;
};

// Operators (defined in ops/tensor_methods.cpp).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);
// Prints like PyTorch: tensor([[1.0000, 2.0000], ...], dtype=float64, requires_grad=True).
std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories (core/factory.cpp) ----
Tensor empty(const Shape& sizes, const TensorOptions& options = {});
Tensor zeros(const Shape& sizes, const TensorOptions& options = {});
Tensor ones(const Shape& sizes, const TensorOptions& options = {});
Tensor full(const Shape& sizes, double value, const TensorOptions& options = {});
// [start, end) with the given step, as float32 unless options say otherwise.
Tensor arange(double start, double end, double step = 1.0, const TensorOptions& options = {});
Tensor arange(int64_t end, const TensorOptions& options = {});
// N(0, 1) and U[0, 1) from the default generator (see core/random.h).
Tensor randn(const Shape& sizes, const TensorOptions& options = {});
Tensor rand(const Shape& sizes, const TensorOptions& options = {});
// A tensor holding a copy of `values`, with the given shape (default: 1-D).
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& sizes, const TensorOptions& options);
Tensor tensor(const std::vector<double>& values, const Shape& sizes = {},
              const TensorOptions& options = {});
Tensor tensor(std::initializer_list<double> values, const TensorOptions& options = {});
Tensor scalar_tensor(double value, const TensorOptions& options = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);

// Internal: a new tensor sharing `base`'s storage with the given geometry, no autograd.
Tensor make_view(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset);

}  // namespace ctxpool
