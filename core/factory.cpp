// Factories: build on the host, then copy to the device when one is asked for.
#include <cmath>
#include <cstring>

#include "core/allocator.h"
#include "core/random.h"
#include "core/tensor.h"

namespace ctxpool {

namespace {
void check_sizes(const Shape& sizes, const char* op) { checked_nbytes(sizes, 8, op); }

Tensor allocate(const Shape& sizes, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(checked_nbytes(sizes, element_size(dtype), "allocate"), device);
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// Fills a host tensor by calling fill(T* data, n) with the right T, moves it to the device, sets
// requires_grad.
template <typename Fill>
Tensor build(const Shape& sizes, const TensorOptions& o, const char* op, Fill fill) {
  check_sizes(sizes, op);
  Tensor host = allocate(sizes, o.dtype(), kCPU);
  CTXPOOL_DISPATCH_ALL(o.dtype(), op, [&] { fill(host.data_ptr<scalar_t>(), host.numel()); });
  Tensor out = host;
  if (o.device().is_cuda()) {
    out = allocate(sizes, o.dtype(), o.device());
    allocator_for(DeviceType::CUDA)
        ->copy_from_host(out.raw_data(), host.raw_data(), host.nbytes(), o.device().index);
  }
  if (o.requires_grad()) out.requires_grad_(true);
  return out;
}
}  // namespace

Tensor empty(const Shape& sizes, const TensorOptions& o) {
  check_sizes(sizes, "empty");
  Tensor t = allocate(sizes, o.dtype(), o.device());
  if (o.requires_grad()) t.requires_grad_(true);
  return t;
}

namespace {
Tensor filled(const Shape& sizes, double value, const TensorOptions& o, const char* op) {
  return build(sizes, o, op, [&](auto* p, int64_t n) {
    using T = std::remove_pointer_t<decltype(p)>;
    std::fill(p, p + n, static_cast<T>(value));
  });
}
}  // namespace

Tensor full(const Shape& sizes, double value, const TensorOptions& o) { return filled(sizes, value, o, "full"); }
Tensor zeros(const Shape& sizes, const TensorOptions& o) { return filled(sizes, 0.0, o, "zeros"); }
Tensor ones(const Shape& sizes, const TensorOptions& o) { return filled(sizes, 1.0, o, "ones"); }
Tensor scalar_tensor(double value, const TensorOptions& o) { return full({}, value, o); }

Tensor arange(double start, double end, double step, const TensorOptions& o) {
  CTXPOOL_CHECK(step != 0, "arange: step must be non-zero");
  CTXPOOL_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
                "arange: start, end and step must be finite, got ", start, ", ", end, ", ", step);
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  return build({n}, o, "arange", [&](auto* p, int64_t count) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < count; ++i) p[i] = static_cast<T>(start + i * step);
  });
}
Tensor arange(int64_t end, const TensorOptions& o) {
  return arange(0.0, static_cast<double>(end), 1.0, o);
}

Tensor randn(const Shape& sizes, const TensorOptions& o) {
  CTXPOOL_CHECK(is_floating(o.dtype()), "randn: expected a floating dtype, got ", o.dtype());
  return build(sizes, o, "randn", [&](auto* p, int64_t n) {
    using T = std::remove_pointer_t<decltype(p)>;
    if constexpr (std::is_floating_point_v<T>) default_generator().normal(p, n);
  });
}

Tensor rand(const Shape& sizes, const TensorOptions& o) {
  CTXPOOL_CHECK(is_floating(o.dtype()), "rand: expected a floating dtype, got ", o.dtype());
  return build(sizes, o, "rand", [&](auto* p, int64_t n) {
    using T = std::remove_pointer_t<decltype(p)>;
    if constexpr (std::is_floating_point_v<T>) default_generator().uniform(p, n);
  });
}

template <typename V>
Tensor from_vector(const std::vector<V>& values, const Shape& sizes, const TensorOptions& o) {
  const Shape shape = sizes.empty() && values.size() != 1 ? Shape{int64_t(values.size())} : sizes;
  CTXPOOL_CHECK(shape_numel(shape) == static_cast<int64_t>(values.size()), "tensor: ",
                values.size(), " values do not fill shape ", shape, " (", shape_numel(shape),
                " elements)");
  return build(shape, o, "tensor", [&](auto* p, int64_t n) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(values[i]);
  });
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, const TensorOptions&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, const TensorOptions&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&,
                                     const TensorOptions&);
template Tensor from_vector<int>(const std::vector<int>&, const Shape&, const TensorOptions&);

Tensor tensor(const std::vector<double>& values, const Shape& sizes, const TensorOptions& o) {
  return from_vector(values, sizes, o);
}
Tensor tensor(std::initializer_list<double> values, const TensorOptions& o) {
  return from_vector(std::vector<double>(values), {static_cast<int64_t>(values.size())}, o);
}

Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), TensorOptions(t.dtype()).device(t.device())); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), TensorOptions(t.dtype()).device(t.device())); }
Tensor empty_like(const Tensor& t) { return empty(t.sizes(), TensorOptions(t.dtype()).device(t.device())); }

}  // namespace ctxpool
