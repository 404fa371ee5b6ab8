// Index kernels: embedding (row gather) and its scatter-add backward, gather / scatter_add.
#include <cstring>

#include "core/parallel.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_index_kernels at the end).
namespace {

// weight [V, D], indices [N] -> out [N, D]
void embedding(const Tensor& weight, const Tensor& indices, const Tensor& out) {
  const int64_t n = indices.numel();
  const int64_t d = weight.sizes()[1];
  const int64_t* ip = indices.data_ptr<int64_t>();
  const size_t row_bytes = d * element_size(weight.dtype());
  const char* wp = static_cast<const char*>(weight.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  parallel_for(0, n, std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      if (row_bytes) std::memcpy(op + r * row_bytes, wp + ip[r] * row_bytes, row_bytes);
  });
}

// grad [N, D], indices [N] -> out [V, D]. Parallel over columns, so each output element is summed
// in index order by one thread: deterministic, no atomics.
void embedding_backward(const Tensor& grad, const Tensor& indices, const Tensor& out) {
  const int64_t n = indices.numel();
  const int64_t d = out.sizes()[1];
  const int64_t* ip = indices.data_ptr<int64_t>();
  kernels(kCPU).fill(out, 0.0);
  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "embedding_backward", [&] {
    using T = scalar_t;
    const T* gp = grad.data_ptr<T>();
    T* op = out.data_ptr<T>();
    parallel_for(0, d, 16, [&](int64_t c0, int64_t c1) {
      for (int64_t r = 0; r < n; ++r) {
        T* dst = op + ip[r] * d;
        const T* src = gp + r * d;
        for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    });
  });
}

// Visits every element of `index` (any strides) with its multi-index.
template <typename F>
void for_each_index(const Tensor& index, const F& f) {
  const Shape& sz = index.sizes();
  const int64_t nd = index.dim();
  std::vector<int64_t> idx(nd, 0);
  const int64_t n = index.numel();
  for (int64_t i = 0; i < n; ++i) {
    f(idx);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++idx[d] < sz[d]) break;
      idx[d] = 0;
    }
  }
}

int64_t offset_of(const std::vector<int64_t>& idx, const Shape& strides) {
  int64_t off = 0;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides[d];
  return off;
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  const int64_t* ip = index.data_ptr<int64_t>();
  CTXPOOL_DISPATCH_ALL(x.dtype(), "gather", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    for_each_index(index, [&](std::vector<int64_t>& idx) {
      const int64_t at = ip[offset_of(idx, index.strides())];
      const int64_t keep = idx[dim];
      const int64_t o = offset_of(idx, out.strides());
      idx[dim] = at;
      op[o] = xp[offset_of(idx, x.strides())];
      idx[dim] = keep;
    });
  });
}

void scatter_add_(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t* ip = index.data_ptr<int64_t>();
  CTXPOOL_DISPATCH_ALL(out.dtype(), "scatter_add", [&] {
    using T = scalar_t;
    const T* sp = src.data_ptr<T>();
    T* op = out.data_ptr<T>();
    for_each_index(index, [&](std::vector<int64_t>& idx) {
      const int64_t at = ip[offset_of(idx, index.strides())];
      const int64_t keep = idx[dim];
      const T v = sp[offset_of(idx, src.strides())];
      idx[dim] = at;
      op[offset_of(idx, out.strides())] += v;
      idx[dim] = keep;
    });
  });
}

}  // namespace

void add_index_kernels(Kernels& k) {
  k.embedding = embedding;
  k.embedding_backward = embedding_backward;
  k.gather = gather;
  k.scatter_add_ = scatter_add_;
}

}  // namespace ctxpool::cpu
