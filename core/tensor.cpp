#include "core/tensor.h"

#include <cstring>

#include "core/allocator.h"

namespace ctxpool {

int64_t Tensor::size(int64_t dim) const {
  CTXPOOL_CHECK(this->dim() > 0, "size: a 0-d tensor has no dims");
  return sizes()[wrap_dim(dim, this->dim(), "size")];
}
int64_t Tensor::stride(int64_t dim) const {
  CTXPOOL_CHECK(this->dim() > 0, "stride: a 0-d tensor has no dims");
  return strides()[wrap_dim(dim, this->dim(), "stride")];
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element, no layout
  const Shape& sz = sizes();
  const Shape& st = strides();
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (sz[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (st[i] != expected) return false;
    expected *= sz[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  const TensorImpl* t = checked();
  if (!t->storage || !t->storage->data()) return nullptr;
  return static_cast<char*>(t->storage->data()) + t->offset * element_size(t->dtype);
}

template <typename T>
T* Tensor::data_ptr() const {
  DType want = DType::Bool;
  if constexpr (!std::is_same_v<T, uint8_t>) want = dtype_of<T>::value;
  CTXPOOL_CHECK(dtype() == want, "data_ptr: tensor has dtype ", dtype(), " but ", want,
                " was requested");
  CTXPOOL_CHECK(device().is_cpu(), "data_ptr: the tensor of shape ", sizes(), " is on ", device(),
                ", so the host cannot read it; copy it with .cpu() first (kernels use raw_data)");
  return static_cast<T*>(raw_data());
}
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template int64_t* Tensor::data_ptr<int64_t>() const;
template uint8_t* Tensor::data_ptr<uint8_t>() const;

namespace {
// Storage offset (in elements, from the tensor's first element) of the element at linear index i.
int64_t strided_offset(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

template <typename T>
double load_as_double(const void* p) {
  return static_cast<double>(*static_cast<const T*>(p));
}
double load(DType dt, const void* p) {
  switch (dt) {
    case DType::Float32: return load_as_double<float>(p);
    case DType::Float64: return load_as_double<double>(p);
    case DType::Int64: return load_as_double<int64_t>(p);
    case DType::Bool: return load_as_double<uint8_t>(p);
  }
  return 0;
}
}  // namespace

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const int64_t n = numel();
  const size_t es = element_size(dtype());
  std::vector<char> host;
  const char* base = static_cast<const char*>(raw_data());
  if (device().is_cuda()) {
    CTXPOOL_CHECK(is_contiguous(), "to_vector: a CUDA tensor of shape ", sizes(),
                  " must be contiguous (call contiguous() first)");
    host.resize(n * es);
    allocator_for(DeviceType::CUDA)->copy_to_host(host.data(), base, n * es, device().index);
    base = host.data();
  }
  std::vector<T> out(n);
  const bool contiguous_host = device().is_cuda() || is_contiguous();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t off = contiguous_host ? i : strided_offset(i, sizes(), strides());
    out[i] = static_cast<T>(load(dtype(), base + off * es));
  }
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<int> Tensor::to_vector<int>() const;

double Tensor::item() const {
  CTXPOOL_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", sizes());
  return to_vector<double>()[0];
}

double Tensor::at(const std::vector<int64_t>& index) const {
  CTXPOOL_CHECK(device().is_cpu(), "at: expected a CPU tensor, got one on ", device());
  CTXPOOL_CHECK(static_cast<int64_t>(index.size()) == dim(), "at: index has ", index.size(),
                " entries but the tensor has shape ", sizes());
  int64_t off = 0;
  for (int64_t d = 0; d < dim(); ++d) {
    CTXPOOL_CHECK(index[d] >= 0 && index[d] < sizes()[d], "at: index ", index[d],
                  " is out of range for dim ", d, " of a tensor with shape ", sizes());
    off += index[d] * strides()[d];
  }
  return load(dtype(), static_cast<const char*>(raw_data()) + off * element_size(dtype()));
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  CTXPOOL_CHECK(is_leaf() || requires_grad, "requires_grad_: cannot turn off requires_grad of a "
                "non-leaf tensor (use detach())");
  CTXPOOL_CHECK(!requires_grad || is_floating(dtype()),
                "requires_grad_: only floating tensors can require grad, got dtype ", dtype());
  checked()->requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = checked()->grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined()) {
    CTXPOOL_CHECK(grad.sizes() == sizes() && grad.dtype() == dtype() && grad.device() == device(),
                  "set_grad: gradient ", grad.sizes(), " ", grad.dtype(), " on ", grad.device(),
                  " does not match tensor ", sizes(), " ", dtype(), " on ", device());
  }
  checked()->grad = grad.impl();
}

Tensor Tensor::detach() const {
  return make_view(*this, sizes(), strides(), storage_offset());
}

Tensor& Tensor::set_name(const std::string& name) {
  checked()->name = name;
  return *this;
}

Tensor make_view(const Tensor& base, const Shape& sizes, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = offset;
  impl->sizes = sizes;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

void Tensor::set_data_(const Tensor& src) {
  TensorImpl* t = checked();
  CTXPOOL_CHECK(src.defined() && src.sizes() == sizes() && src.dtype() == dtype(), "set_data_: the new data ",
                src.defined() ? "" : "is undefined", " must have the tensor's shape ", sizes(), " and dtype ", dtype());
  CTXPOOL_CHECK(t->grad_fn == nullptr, "set_data_: only a leaf tensor (a parameter or buffer) can change its data");
  const TensorImpl* from = src.impl().get();
  t->storage = from->storage;
  t->offset = from->offset;
  t->strides = from->strides;
  t->grad.reset();
}

}  // namespace ctxpool
