// Tensor's methods and operators (declared in core/tensor.h), defined here on top of the ops, as
// PyTorch defines its Tensor methods in its op library. Also the in-place ops.
#include "cuda/cuda_api.h"
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool {

namespace {
// An in-place destination whose elements alias each other (an expanded view, stride 0) would be
// updated several times per element: refuse it, as PyTorch does.
void check_no_internal_overlap(const char* op, const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    CTXPOOL_CHECK(!(t.sizes()[d] > 1 && t.strides()[d] == 0), op, ": the destination ", t.sizes(), " with strides ",
                  t.strides(), " has several elements at one memory location (an expanded view); clone() it first");
  }
}

// A source that shares memory with the destination in another layout (x.add_(x.t())) would be read
// after parts of it were overwritten: read it from a copy.
Tensor unaliased(const Tensor& src, const Tensor& dst) {
  const bool same_memory = src.impl()->storage == dst.impl()->storage;
  const bool same_view = src.storage_offset() == dst.storage_offset() && src.sizes() == dst.sizes() &&
                         src.strides() == dst.strides();
  return same_memory && !same_view ? src.clone() : src;
}
}  // namespace

Tensor Tensor::add(const Tensor& o) const { return ops::add(*this, o); }
Tensor Tensor::sub(const Tensor& o) const { return ops::sub(*this, o); }
Tensor Tensor::mul(const Tensor& o) const { return ops::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return ops::div(*this, o); }
Tensor Tensor::pow(const Tensor& o) const { return ops::pow(*this, o); }
Tensor Tensor::pow(double e) const { return ops::pow(*this, e); }
Tensor Tensor::neg() const { return ops::neg(*this); }
Tensor Tensor::exp() const { return ops::exp(*this); }
Tensor Tensor::log() const { return ops::log(*this); }
Tensor Tensor::sqrt() const { return ops::sqrt(*this); }
Tensor Tensor::rsqrt() const { return ops::rsqrt(*this); }
Tensor Tensor::tanh() const { return ops::tanh(*this); }
Tensor Tensor::sigmoid() const { return ops::sigmoid(*this); }
Tensor Tensor::relu() const { return ops::relu(*this); }
Tensor Tensor::abs() const { return ops::abs(*this); }
Tensor Tensor::clamp(double min, double max) const { return ops::clamp(*this, min, max); }
Tensor Tensor::eq(const Tensor& o) const { return ops::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return ops::ne(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return ops::lt(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return ops::le(*this, o); }
Tensor Tensor::gt(const Tensor& o) const { return ops::gt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return ops::ge(*this, o); }
Tensor Tensor::masked_fill(const Tensor& mask, double value) const { return ops::masked_fill(*this, mask, value); }

Tensor Tensor::sum() const { return ops::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return ops::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return ops::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return ops::mean(*this, dims, keepdim); }
Tensor Tensor::max() const { return ops::max(*this); }
Tensor Tensor::min() const { return ops::min(*this); }
Tensor Tensor::var(const std::vector<int64_t>& dims, bool keepdim, int64_t correction) const {
  return ops::var(*this, dims, keepdim, correction);
}

Tensor Tensor::matmul(const Tensor& o) const { return ops::matmul(*this, o); }

Tensor Tensor::view(const Shape& sizes) const { return ops::view(*this, sizes); }
Tensor Tensor::reshape(const Shape& sizes) const { return ops::reshape(*this, sizes); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return ops::permute(*this, dims); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return ops::transpose(*this, d0, d1); }
Tensor Tensor::t() const {
  CTXPOOL_CHECK(dim() <= 2, "t: expected a tensor with at most 2 dims, got shape ", sizes());
  return dim() < 2 ? *this : ops::transpose(*this, 0, 1);
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const { return ops::narrow(*this, dim, start, length); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  return ops::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return ops::select(*this, dim, index); }
Tensor Tensor::expand(const Shape& sizes) const { return ops::expand(*this, sizes); }
Tensor Tensor::squeeze(int64_t dim) const { return ops::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return ops::unsqueeze(*this, dim); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return ops::flatten(*this, s, e); }
Tensor Tensor::contiguous() const { return ops::contiguous(*this); }
Tensor Tensor::to(DType dtype) const { return ops::to_dtype(*this, dtype); }
Tensor Tensor::to(Device device) const { return ops::to_device(*this, device); }
Tensor Tensor::clone() const { return ops::clone(*this); }

Tensor& Tensor::fill_(double value) {
  ops::fill_(*this, value);
  return *this;
}
Tensor& Tensor::copy_(const Tensor& src) {
  ops::copy_(*this, src);
  return *this;
}
Tensor& Tensor::add_(const Tensor& o, double alpha) {
  ops::check_inplace("add_", *this);
  ops::check_same("add_", *this, o);
  const auto binary = kernel(&Kernels::binary, "add_", *this);
  const Shape shape = broadcast_shapes(sizes(), o.sizes(), "add_");
  CTXPOOL_CHECK(shape == sizes(), "add_: cannot add ", o.sizes(), " in place into ", sizes());
  check_no_internal_overlap("add_", *this);
  autograd::NoGradGuard no_grad;
  const Tensor src = alpha == 1.0 ? unaliased(o, *this) : ops::mul(o, ops::scalar_like(alpha, o));
  binary(BinaryOp::Add, *this, src, *this);
  bump_version();
  return *this;
}
Tensor& Tensor::mul_(double factor) {
  ops::check_inplace("mul_", *this);
  const auto binary = kernel(&Kernels::binary, "mul_", *this);
  check_no_internal_overlap("mul_", *this);
  binary(BinaryOp::Mul, *this, ops::scalar_like(factor, *this), *this);
  bump_version();
  return *this;
}

namespace ops {

void fill_(const Tensor& x, double value) {
  check_inplace("fill_", x);
  kernel(&Kernels::fill, "fill_", x)(x, value);
  x.bump_version();
}

void copy_(const Tensor& dst, const Tensor& src) {
  check_inplace("copy_", dst);
  check_defined("copy_", src, "source");
  const Shape shape = broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
  CTXPOOL_CHECK(shape == dst.sizes(), "copy_: source of shape ", src.sizes(),
                " does not broadcast to the destination's shape ", dst.sizes());
  check_no_internal_overlap("copy_", dst);
  autograd::NoGradGuard no_grad;
  Tensor s = src.device() == dst.device() ? unaliased(src, dst) : src.contiguous().to(dst.device());
  kernel(&Kernels::copy, "copy_", dst)(s, dst);
  dst.bump_version();
}

bool cuda_is_available() { return cuda::device_count() > 0; }
int cuda_device_count() { return cuda::device_count(); }

}  // namespace ops

Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
Tensor operator+(const Tensor& a, double b) { return ops::add(a, ops::scalar_like(b, a)); }
Tensor operator-(const Tensor& a, double b) { return ops::sub(a, ops::scalar_like(b, a)); }
Tensor operator*(const Tensor& a, double b) { return ops::mul(a, ops::scalar_like(b, a)); }
Tensor operator/(const Tensor& a, double b) { return ops::div(a, ops::scalar_like(b, a)); }
Tensor operator+(double a, const Tensor& b) { return ops::add(ops::scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return ops::sub(ops::scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return ops::mul(ops::scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return ops::div(ops::scalar_like(a, b), b); }
Tensor operator-(const Tensor& a) { return ops::neg(a); }

}  // namespace ctxpool
