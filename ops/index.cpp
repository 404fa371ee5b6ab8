// Index ops: embedding (row lookup, scatter-add backward), gather / scatter_add, one_hot.
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// Every index in [0, limit): its min and max where it lives (on a GPU, one copy of two numbers back
// to the host), and the exact position on the host only when something is out of range.
void check_indices_in_range(const char* op, const Tensor& index, int64_t limit, const char* what) {
  if (index.numel() == 0) return;
  {
    autograd::NoGradGuard no_grad;
    const std::vector<int64_t> bounds = stack({min(index), max(index)}).to_vector<int64_t>();
    if (bounds[0] >= 0 && bounds[1] < limit) return;
  }
  const Tensor c = index.to(kCPU).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    CTXPOOL_CHECK(p[i] >= 0 && p[i] < limit, op, ": index ", p[i], " at position ", i,
                  " is out of range for ", what, " of size ", limit);
  }
}

// grad [N, D], indices [N] -> [V, D]; differentiable in grad (its backward is a row lookup again).
Tensor embedding_backward(const Tensor& g, const Tensor& indices, int64_t num_rows) {
  const int64_t d = g.sizes().back();
  Tensor out = new_empty({num_rows, d}, g.dtype(), g.device());
  kernel(&Kernels::embedding_backward, "embedding backward", g)(g.detach().reshape({-1, d}).contiguous(),
                                                                 indices.reshape({-1}).contiguous(), out);
  return record("embedding_backward", {g}, out, [indices, gs = g.sizes()](const Tensor& gg, const LambdaNode&) {
    return Grads{embedding(gg, indices).reshape(gs)};
  });
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  check_floating("embedding", weight);
  check_defined("embedding", indices, "indices");
  check_same_device("embedding", weight, indices);
  const auto embedding_kernel = kernel(&Kernels::embedding, "embedding", weight);
  CTXPOOL_CHECK(weight.dim() == 2, "embedding: weight must be 2-D [num_embeddings, dim], got ", weight.sizes());
  CTXPOOL_CHECK(indices.dtype() == kInt64, "embedding: indices must be int64, got ", indices.dtype(),
                " with shape ", indices.sizes());
  check_indices_in_range("embedding", indices, weight.sizes()[0], "an embedding table");
  Shape out_sizes = indices.sizes();
  out_sizes.push_back(weight.sizes()[1]);
  Tensor out = new_empty(out_sizes, weight.dtype(), weight.device());
  const Tensor flat = indices.reshape({-1}).contiguous();
  embedding_kernel(weight.contiguous().detach(), flat, out);
  // Saved with a version check: indices changed in place before backward would scatter out of bounds.
  return record("embedding", {weight}, out, [sf = SavedTensor(flat), v = weight.sizes()[0]](const Tensor& g, const LambdaNode&) {
    return Grads{embedding_backward(g, sf.unpack("embedding"), v)};
  });
}

namespace {
void check_gather_args(const char* op, const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined(op, x);
  check_defined(op, index, "index");
  CTXPOOL_CHECK(index.dtype() == kInt64, op, ": index must be int64, got ", index.dtype());
  CTXPOOL_CHECK(x.dim() > 0, op, ": expected a tensor with at least 1 dim, got a 0-d tensor");
  CTXPOOL_CHECK(index.dim() == x.dim(), op, ": index ", index.sizes(), " must have as many dims as the input ",
                x.sizes());
  for (int64_t d = 0; d < x.dim(); ++d) {
    CTXPOOL_CHECK(d == dim || index.sizes()[d] <= x.sizes()[d], op, ": index ", index.sizes(),
                  " is larger than the input ", x.sizes(), " in dim ", d);
  }
  check_indices_in_range(op, index, x.dim() ? x.sizes()[dim] : 1, "the gathered dim");
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index) {
  check_defined("gather", x);
  check_defined("gather", index, "index");
  check_same_device("gather", x, index);
  const auto gather_kernel = kernel(&Kernels::gather, "gather", x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "gather");
  check_gather_args("gather", x, dim, index);
  Tensor out = new_empty(index.sizes(), x.dtype(), x.device());
  gather_kernel(x, dim, index, out);
  return record("gather", {x}, out, [in = x.sizes(), dim, si = SavedTensor(index)](const Tensor& g, const LambdaNode&) {
    return Grads{scatter_add(zeros(in, TensorOptions(g.dtype()).device(g.device())), dim, si.unpack("gather"), g)};
  });
}

Tensor scatter_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  check_same("scatter_add", x, src);
  check_defined("scatter_add", index, "index");
  check_same_device("scatter_add", x, index);
  const auto scatter_add_kernel = kernel(&Kernels::scatter_add_, "scatter_add", x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "scatter_add");
  check_gather_args("scatter_add", x, dim, index);
  CTXPOOL_CHECK(src.dim() == index.dim(), "scatter_add: src ", src.sizes(), " must have as many dims as index ",
                index.sizes());
  for (int64_t d = 0; d < index.dim(); ++d) {
    CTXPOOL_CHECK(index.sizes()[d] <= src.sizes()[d], "scatter_add: index ", index.sizes(),
                  " is larger than src ", src.sizes(), " in dim ", d);
  }
  Tensor out = clone(x.detach());
  scatter_add_kernel(out, dim, index, src);
  return record("scatter_add", {x, src}, out, [dim, si = SavedTensor(index)](const Tensor& g, const LambdaNode& n) {
    return Grads{n.needs_input_grad(0) ? g : Tensor(), n.needs_input_grad(1) ? gather(g, dim, si.unpack("scatter_add")) : Tensor()};
  });
}

Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype) {
  check_defined("one_hot", indices);
  CTXPOOL_CHECK(indices.dtype() == kInt64, "one_hot: indices must be int64, got ", indices.dtype());
  CTXPOOL_CHECK(num_classes > 0, "one_hot: num_classes must be positive, got ", num_classes);
  check_indices_in_range("one_hot", indices, num_classes, "num_classes");
  Shape sizes = indices.sizes();
  sizes.push_back(num_classes);
  const Tensor idx = unsqueeze(indices, -1);
  return scatter_add(zeros(sizes, TensorOptions(dtype).device(indices.device())), -1, idx,
                     ones(idx.sizes(), TensorOptions(dtype).device(indices.device())));
}

}  // namespace ctxpool::ops
