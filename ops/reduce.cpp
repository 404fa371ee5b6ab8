// Reductions. Each moves the reduced dims last, makes the data contiguous [rows, cols] and runs one
// row kernel; the backward broadcasts the gradient back over the reduced dims.
#include <algorithm>
#include <numeric>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    out.resize(ndim);
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  CTXPOOL_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
                ": a dim appears more than once in the reduction dims");
  if (ndim == 0) out.clear();  // a 0-d tensor: nothing to reduce
  return out;
}

namespace {

// The shapes of a reduction over `dims`.
struct ReducedShapes {
  Shape kept;     // output shape without keepdim
  Shape keepdim;  // output shape with size-1 reduced dims
  int64_t cols = 1;  // elements reduced into each output
};

ReducedShapes reduced_shapes(const Tensor& x, const std::vector<int64_t>& dims) {
  ReducedShapes r;
  r.keepdim = x.sizes();
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (std::find(dims.begin(), dims.end(), d) != dims.end()) {
      r.cols *= x.sizes()[d];
      r.keepdim[d] = 1;
    } else {
      r.kept.push_back(x.sizes()[d]);
    }
  }
  return r;
}

// x laid out as contiguous [outputs, cols]: the reduced dims moved last (a copy when needed).
Tensor as_rows(const Tensor& x, const std::vector<int64_t>& dims, const ReducedShapes& r) {
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) perm.push_back(d);
  perm.insert(perm.end(), dims.begin(), dims.end());
  autograd::NoGradGuard no_grad;  // layout only; the op records its own backward
  return x.detach().permute(perm).contiguous().reshape({shape_numel(r.kept), r.cols});
}

// g of the reduced shape -> broadcast back to `in_sizes`.
Tensor expand_grad(const Tensor& g, const Shape& keepdim_shape, const Shape& in_sizes) {
  return g.reshape(keepdim_shape).expand(in_sizes);
}

// How many of the sorted reduced dims are 0, 1, 2, ... (a leading block).
int64_t leading_block(const std::vector<int64_t>& dims) {
  int64_t k = 0;
  while (k < static_cast<int64_t>(dims.size()) && dims[k] == k) ++k;
  return k;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_defined("sum", x);
  const auto sum_rows = kernel(&Kernels::sum_rows, "sum", x);
  if (x.dtype() == kBool) return sum(x.to(kInt64), dims_in, keepdim);  // count, as torch does
  const std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "sum");
  const ReducedShapes shapes = reduced_shapes(x, dims);
  Tensor out = new_empty(shapes.kept, x.dtype(), x.device());
  const bool consecutive = !dims.empty() && dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (x.is_contiguous() && consecutive) {
    // Reduced dims in one block: view x as [outer, reduce, inner] and sum in place, no copy.
    int64_t outer = 1, reduce = 1, inner = 1;
    for (int64_t d = 0; d < x.dim(); ++d) (d < dims.front() ? outer : d > dims.back() ? inner : reduce) *= x.sizes()[d];
    const Tensor flat = x.detach();
    if (inner == 1) {
      sum_rows(make_view(flat, {outer, reduce}, {reduce, 1}, flat.storage_offset()), out);
    } else {
      kernel(&Kernels::sum_middle, "sum", x)(flat, outer, reduce, inner, out);
    }
  } else if (const int64_t lead = leading_block(dims), n = x.dim();
             x.is_contiguous() && lead > 0 && lead < static_cast<int64_t>(dims.size()) &&
             static_cast<int64_t>(dims.size()) - lead == n - dims[lead]) {
    // A leading and a trailing block of reduced dims, [outer, kept, inner] (a per-channel bias's
    // gradient over [B, C, H, W]): the rows of `inner` first, in place, then `outer` of the
    // [outer, kept] sums, rather than a permuted copy of x. (The inner sums are rounded to x's dtype
    // once in between.)
    int64_t outer = 1, kept = 1, inner = 1;
    for (int64_t d = 0; d < n; ++d) (d < lead ? outer : d < dims[lead] ? kept : inner) *= x.sizes()[d];
    const Tensor flat = x.detach();
    const Tensor inner_sums = new_empty({outer * kept}, x.dtype(), x.device());
    sum_rows(make_view(flat, {outer * kept, inner}, {inner, 1}, flat.storage_offset()), inner_sums);
    kernel(&Kernels::sum_middle, "sum", x)(inner_sums, 1, outer, kept, out);
  } else {
    sum_rows(as_rows(x, dims, shapes), out);
  }
  if (keepdim) out = out.detach().reshape(shapes.keepdim);
  return record("sum", {x}, out, [ks = shapes.keepdim, in = x.sizes()](const Tensor& g, const LambdaNode&) {
    return Grads{expand_grad(g, ks, in)};
  });
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  check_floating("mean", x);
  const std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.sizes()[d];
  return div(sum(x, dims, keepdim), scalar_like(static_cast<double>(count), x));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim, int64_t correction) {
  check_floating("var", x);
  const std::vector<int64_t> dims = normalize_dims(dims_in, x.dim(), "var");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.sizes()[d];
  const Tensor centered = sub(x, mean(x, dims, true));
  const double denom = static_cast<double>(std::max<int64_t>(count - correction, 0));
  return div(sum(mul(centered, centered), dims, keepdim), scalar_like(denom, x));
}

namespace {
std::pair<Tensor, Tensor> max_min(const Tensor& x, int64_t dim_in, bool keepdim, bool find_max) {
  const char* name = find_max ? "max" : "min";
  check_defined(name, x);
  const auto max_or_min_rows = kernel(&Kernels::max_or_min_rows, name, x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), name);
  CTXPOOL_CHECK(x.dim() == 0 || x.sizes()[dim] > 0, name, ": cannot reduce over dim ", dim,
                " of size 0 (shape ", x.sizes(), ")");
  const std::vector<int64_t> dims = x.dim() ? std::vector<int64_t>{dim} : std::vector<int64_t>{};
  const ReducedShapes shapes = reduced_shapes(x, dims);
  Tensor values = new_empty(shapes.kept, x.dtype(), x.device());
  Tensor indices = new_empty(shapes.kept, kInt64, x.device());
  max_or_min_rows(as_rows(x, dims, shapes), values, indices, find_max);
  if (keepdim) {
    values = values.detach().reshape(shapes.keepdim);
    indices = indices.reshape(shapes.keepdim);
  }
  if (!is_floating(x.dtype())) return {values, indices};
  values = record(name, {x}, values,
                  [in = x.sizes(), ks = shapes.keepdim, si = SavedTensor(indices.reshape(shapes.keepdim)), dim,
                   is0d = x.dim() == 0, name](const Tensor& g, const LambdaNode&) {
    if (is0d) return Grads{g};
    const Tensor idx = si.unpack(name);
    // The gradient goes to the position of the chosen element only.
    return Grads{scatter_add(zeros(in, TensorOptions(g.dtype()).device(g.device())), dim, idx, g.reshape(ks))};
  });
  return {values, indices};
}
}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min(x, dim, keepdim, true);
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return max_min(x, dim, keepdim, false);
}
namespace {
// max() / min() over all elements. The gradient is split evenly among the elements equal to the
// result (PyTorch's rule for the full reduction), so ties get equal shares; max(x, dim) instead
// gives it to the one index it returns.
Tensor extreme_of_all(const char* name, const Tensor& x, bool is_max) {
  check_defined(name, x);
  CTXPOOL_CHECK(x.numel() > 0, name, ": cannot take the ", name, " of an empty tensor (shape ", x.sizes(), ")");
  Tensor value;
  {
    autograd::NoGradGuard no_grad;
    value = max_min(x.reshape({-1}), 0, false, is_max).first;
  }
  return record(name, {x}, value, [sx = SavedTensor(x), name](const Tensor& g, const LambdaNode& n) {
    const Tensor in = sx.unpack(name), result = n.saved_output();
    // A NaN result goes to the NaN elements (NaN equals nothing, so they are matched apart).
    const Tensor nan_hit = logical_and(ne(in, in), ne(result, result));
    const Tensor hit = logical_not(logical_and(logical_not(eq(in, result)), logical_not(nan_hit))).to(g.dtype());
    return Grads{mul(div(hit, sum(hit)), g)};
  }, /*save_output=*/true);
}
}  // namespace

Tensor max(const Tensor& x) { return extreme_of_all("max", x, true); }
Tensor min(const Tensor& x) { return extreme_of_all("min", x, false); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return max_min(x, dim, keepdim, true).second; }

Tensor sum_to_size(const Tensor& x, const Shape& sizes) {
  if (x.sizes() == sizes) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(sizes.size());
  CTXPOOL_CHECK(lead >= 0, "sum_to_size: cannot sum ", x.sizes(), " to the larger shape ", sizes);
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (sizes[d - lead] == 1 && x.sizes()[d] != 1) {
      dims.push_back(d);
    } else {
      CTXPOOL_CHECK(sizes[d - lead] == x.sizes()[d], "sum_to_size: shape ", x.sizes(),
                    " does not broadcast from ", sizes);
    }
  }
  Tensor s = dims.empty() ? x : sum(x, dims, true);
  return s.reshape(sizes);
}

}  // namespace ctxpool::ops
