// Views (share storage, no copy) and the ops that build new layouts: contiguous, clone, cat, stack,
// split, dtype and device conversion. A view's backward reshapes/permutes/pads the gradient back.
#include <algorithm>
#include <optional>

#include "core/allocator.h"
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// Resolves one -1 in a requested shape against numel.
Shape infer_size(const Shape& sizes, int64_t numel, const char* op, const Shape& from) {
  Shape out = sizes;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      CTXPOOL_CHECK(infer < 0, op, ": only one dimension can be -1, got ", sizes);
      infer = static_cast<int64_t>(i);
    } else {
      CTXPOOL_CHECK(out[i] >= 0, op, ": invalid size ", out[i], " in ", sizes);
      known *= out[i];
    }
  }
  if (infer >= 0) {
    CTXPOOL_CHECK(known > 0 && numel % known == 0, op, ": shape ", sizes, " is invalid for input ",
                  from, " of ", numel, " elements");
    out[infer] = numel / known;
  }
  CTXPOOL_CHECK(shape_numel(out) == numel, op, ": shape ", sizes, " is invalid for input ", from,
                " of ", numel, " elements");
  return out;
}

// Strides that let `new_sizes` view memory laid out as (sizes, strides), if any (as PyTorch's
// computeStride): dims are grouped into chunks that are contiguous among themselves.
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes) {
  if (shape_numel(sizes) == 0 || sizes.empty()) return contiguous_strides(new_sizes);
  Shape out(new_sizes.size());
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// A view of x recorded with a backward that maps the gradient back to x's shape.
Tensor record_view(const char* name, const Tensor& x, const Shape& sizes, const Shape& strides,
                   int64_t offset, LambdaNode::BackwardFn backward) {
  Tensor out = make_view(x, sizes, strides, offset);
  return record(name, {x}, out, std::move(backward));
}

Tensor reshape_back(const Tensor& x, const char* name, const Shape& sizes, const Shape& strides) {
  return record_view(name, x, sizes, strides, x.storage_offset(),
                     [in = x.sizes()](const Tensor& g, const LambdaNode&) { return Grads{g.reshape(in)}; });
}

}  // namespace

Tensor view(const Tensor& x, const Shape& sizes_in) {
  check_defined("view", x);
  const Shape sizes = infer_size(sizes_in, x.numel(), "view", x.sizes());
  auto strides = view_strides(x.sizes(), x.strides(), sizes);
  CTXPOOL_CHECK(strides.has_value(), "view: cannot view ", x.sizes(), " with strides ", x.strides(),
                " as ", sizes, " without a copy; use reshape() (or contiguous().view())");
  return reshape_back(x, "view", sizes, *strides);
}

Tensor reshape(const Tensor& x, const Shape& sizes_in) {
  check_defined("reshape", x);
  const Shape sizes = infer_size(sizes_in, x.numel(), "reshape", x.sizes());
  if (auto strides = view_strides(x.sizes(), x.strides(), sizes))
    return reshape_back(x, "reshape", sizes, *strides);
  return view(contiguous(x), sizes);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined("permute", x);
  CTXPOOL_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: got ", dims.size(),
                " dims for a tensor of shape ", x.sizes());
  Shape sizes(x.dim()), strides(x.dim());
  std::vector<int64_t> inverse(x.dim(), -1);
  for (int64_t i = 0; i < x.dim(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "permute");
    CTXPOOL_CHECK(inverse[d] < 0, "permute: dim ", d, " appears twice in ", Shape(dims));
    inverse[d] = i;
    sizes[i] = x.sizes()[d];
    strides[i] = x.strides()[d];
  }
  return record_view("permute", x, sizes, strides, x.storage_offset(),
                     [inverse](const Tensor& g, const LambdaNode&) { return Grads{g.permute(inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  check_defined("transpose", x);
  std::vector<int64_t> perm(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) perm[i] = i;
  const int64_t d0 = wrap_dim(dim0, x.dim(), "transpose"), d1 = wrap_dim(dim1, x.dim(), "transpose");
  if (x.dim() == 0) return permute(x, perm);  // dims 0 and -1 name the 0-d tensor itself
  std::swap(perm[d0], perm[d1]);
  return permute(x, perm);
}

namespace {
// grad of a slice: zeros of the input's shape with g written into the sliced region. An op of its
// own so that it is differentiable (its backward slices again).
Tensor slice_backward(const Tensor& g, const Shape& in_sizes, int64_t dim, int64_t start, int64_t end,
                      int64_t step) {
  const auto copy = kernel(&Kernels::copy, "slice backward", g);
  Tensor out = zeros(in_sizes, TensorOptions(g.dtype()).device(g.device()));
  {
    autograd::NoGradGuard no_grad;
    copy(g, slice(out, dim, start, end, step));
  }
  return record("slice_backward", {g}, out, [dim, start, end, step](const Tensor& gg, const LambdaNode&) {
    return Grads{slice(gg, dim, start, end, step)};
  });
}
}  // namespace

Tensor slice(const Tensor& x, int64_t dim_in, int64_t start, int64_t end, int64_t step) {
  check_defined("slice", x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "slice");
  CTXPOOL_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  CTXPOOL_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = x.sizes()[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = x.sizes(), strides = x.strides();
  sizes[dim] = end > start ? 1 + (end - start - 1) / step : 0;  // no overflow for a huge step
  strides[dim] *= step;
  const int64_t offset = x.storage_offset() + start * x.strides()[dim];
  return record_view("slice", x, sizes, strides, offset,
                     [in = x.sizes(), dim, start, end, step](const Tensor& g, const LambdaNode&) {
    return Grads{slice_backward(g, in, dim, start, end, step)};
  });
}

Tensor narrow(const Tensor& x, int64_t dim_in, int64_t start, int64_t length) {
  check_defined("narrow", x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "narrow");
  const int64_t n = x.dim() ? x.sizes()[dim] : 1;
  if (start < 0) start += n;
  CTXPOOL_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: start ", start,
                " + length ", length, " exceeds size ", n, " of dim ", dim, " (shape ", x.sizes(), ")");
  return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim_in, int64_t index) {
  check_defined("select", x);
  CTXPOOL_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "select");
  const int64_t n = x.sizes()[dim];
  CTXPOOL_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", dim,
                " of size ", n, " (shape ", x.sizes(), ")");
  return squeeze(narrow(x, dim, index < 0 ? index + n : index, 1), dim);
}

Tensor expand(const Tensor& x, const Shape& sizes_in) {
  check_defined("expand", x);
  CTXPOOL_CHECK(static_cast<int64_t>(sizes_in.size()) >= x.dim(), "expand: cannot expand ", x.sizes(),
                " to fewer dims ", sizes_in);
  const int64_t lead = static_cast<int64_t>(sizes_in.size()) - x.dim();
  Shape sizes(sizes_in.size()), strides(sizes_in.size());
  for (int64_t i = 0; i < static_cast<int64_t>(sizes_in.size()); ++i) {
    if (i < lead) {
      CTXPOOL_CHECK(sizes_in[i] >= 0, "expand: invalid size ", sizes_in[i], " for a new dim in ", sizes_in);
      sizes[i] = sizes_in[i];
      strides[i] = 0;
      continue;
    }
    const int64_t have = x.sizes()[i - lead];
    const int64_t want = sizes_in[i] == -1 ? have : sizes_in[i];
    CTXPOOL_CHECK(want >= 0, "expand: invalid size ", sizes_in[i], " in ", sizes_in);
    CTXPOOL_CHECK(have == want || have == 1, "expand: cannot expand ", x.sizes(), " to ", sizes_in,
                  " (dim ", i, ": size ", have, " is not 1)");
    sizes[i] = want;
    strides[i] = have == want ? x.strides()[i - lead] : 0;
  }
  if (sizes == x.sizes()) return x;
  return record_view("expand", x, sizes, strides, x.storage_offset(),
                     [in = x.sizes()](const Tensor& g, const LambdaNode&) { return Grads{sum_to_size(g, in)}; });
}

Tensor squeeze(const Tensor& x, int64_t dim_in) {
  check_defined("squeeze", x);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "squeeze");  // a 0-d tensor accepts 0 and -1 only
  if (x.dim() == 0) return x;
  if (x.sizes()[dim] != 1) return x;
  Shape sizes = x.sizes(), strides = x.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return reshape_back(x, "squeeze", sizes, strides);
}

Tensor squeeze(const Tensor& x) {
  check_defined("squeeze", x);
  Shape sizes, strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.sizes()[d] == 1) continue;
    sizes.push_back(x.sizes()[d]);
    strides.push_back(x.strides()[d]);
  }
  return reshape_back(x, "squeeze", sizes, strides);
}

Tensor unsqueeze(const Tensor& x, int64_t dim_in) {
  check_defined("unsqueeze", x);
  const int64_t dim = wrap_dim(dim_in, x.dim() + 1, "unsqueeze");
  Shape sizes = x.sizes(), strides = x.strides();
  const int64_t st = dim < x.dim() ? x.strides()[dim] * x.sizes()[dim] : 1;
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, st);
  return reshape_back(x, "unsqueeze", sizes, strides);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = wrap_dim(start_dim, x.dim(), "flatten");
  const int64_t e = wrap_dim(end_dim, x.dim(), "flatten");
  CTXPOOL_CHECK(s <= e, "flatten: start_dim ", s, " is after end_dim ", e);
  Shape sizes(x.sizes().begin(), x.sizes().begin() + s);
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= x.sizes()[d];
  sizes.push_back(n);
  sizes.insert(sizes.end(), x.sizes().begin() + e + 1, x.sizes().end());
  return reshape(x, sizes);
}

Tensor clone(const Tensor& x) {
  check_defined("clone", x);
  const auto copy = kernel(&Kernels::copy, "clone", x);
  Tensor out = new_empty(x.sizes(), x.dtype(), x.device());
  copy(x, out);
  return record("clone", {x}, out, [](const Tensor& g, const LambdaNode&) { return Grads{g}; });
}

Tensor contiguous(const Tensor& x) {
  check_defined("contiguous", x);
  return x.is_contiguous() ? x : clone(x);
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim_in) {
  CTXPOOL_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  check_defined("cat", first);
  CTXPOOL_CHECK(first.dim() > 0, "cat: cannot concatenate 0-d tensors (use stack)");
  const int64_t dim = wrap_dim(dim_in, first.dim(), "cat");
  Shape sizes = first.sizes();
  sizes[dim] = 0;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_same("cat", first, t);
    bool ok = t.dim() == first.dim();
    for (int64_t d = 0; ok && d < t.dim(); ++d) ok = d == dim || t.sizes()[d] == first.sizes()[d];
    CTXPOOL_CHECK(ok, "cat: tensor ", i, " has shape ", t.sizes(), " but tensor 0 has shape ",
                  first.sizes(), "; all sizes except dim ", dim, " must match");
    lengths.push_back(t.sizes()[dim]);
    sizes[dim] += t.sizes()[dim];
  }
  const auto copy = kernel(&Kernels::copy, "cat", first);
  Tensor out = new_empty(sizes, first.dtype(), first.device());
  {
    autograd::NoGradGuard no_grad;
    int64_t at = 0;
    for (const Tensor& t : tensors) {
      copy(t, narrow(out, dim, at, t.sizes()[dim]));
      at += t.sizes()[dim];
    }
  }
  return record("cat", tensors, out, [lengths, dim](const Tensor& g, const LambdaNode& n) {
    Grads grads;
    int64_t at = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      grads.push_back(n.needs_input_grad(i) ? narrow(g, dim, at, lengths[i]) : Tensor());
      at += lengths[i];
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  CTXPOOL_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  check_defined("stack", tensors[0]);
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined("stack", tensors[i]);
    CTXPOOL_CHECK(tensors[i].sizes() == tensors[0].sizes(), "stack: tensor ", i, " has shape ",
                  tensors[i].sizes(), " but tensor 0 has shape ", tensors[0].sizes());
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim_in) {
  check_defined("split", x);
  CTXPOOL_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    CTXPOOL_CHECK(s >= 0, "split: negative size ", s);
    total += s;
  }
  CTXPOOL_CHECK(total == x.sizes()[dim], "split: sizes ", Shape(sizes), " add up to ", total,
                " but dim ", dim, " has size ", x.sizes()[dim]);
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim_in) {
  check_defined("split", x);
  CTXPOOL_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  CTXPOOL_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < x.sizes()[dim]; at += split_size)
    sizes.push_back(std::min(split_size, x.sizes()[dim] - at));
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim_in) {
  check_defined("chunk", x);
  CTXPOOL_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  CTXPOOL_CHECK(x.dim() > 0, "chunk: cannot chunk a 0-d tensor");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "chunk");
  const int64_t n = x.sizes()[dim];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined("to", x);
  if (x.dtype() == dtype) return x;
  const auto copy = kernel(&Kernels::copy, "to(dtype)", x);
  Tensor out = new_empty(x.sizes(), dtype, x.device());
  copy(x, out);
  if (!is_floating(dtype) || !is_floating(x.dtype())) return out;  // no gradient through ints/bools
  return record("to_dtype", {x}, out, [from = x.dtype()](const Tensor& g, const LambdaNode&) {
    return Grads{g.to(from)};
  });
}

Tensor to_device(const Tensor& x, Device device) {
  check_defined("to", x);
  if (x.device() == device) return x;
  const Tensor src = contiguous(x.detach());  // on its own device: the bytes then move in one piece
  Tensor out = new_empty(x.sizes(), x.dtype(), device);
  if (x.device().is_cpu()) {
    allocator_for(device.type)->copy_from_host(out.raw_data(), src.raw_data(), src.nbytes(), device.index);
  } else if (device.is_cpu()) {
    allocator_for(x.device().type)->copy_to_host(out.raw_data(), src.raw_data(), src.nbytes(), x.device().index);
  } else {
    return to_device(to_device(x, kCPU), device);  // device to device through the host
  }
  return record("to_device", {x}, out, [from = x.device()](const Tensor& g, const LambdaNode&) {
    return Grads{g.to(from)};
  });
}

}  // namespace ctxpool::ops
