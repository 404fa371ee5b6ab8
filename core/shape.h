// Sizes, strides and NumPy-style broadcasting.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ctxpool {

using Shape = std::vector<int64_t>;

std::ostream& operator<<(std::ostream& os, const Shape& s);
std::string shape_str(const Shape& s);

// Product of the sizes (1 for a 0-d shape).
int64_t shape_numel(const Shape& sizes);

// numel * element_size in bytes, or an error naming the op when a size is negative or the product
// overflows (a shape read from a file or computed wrongly must not wrap around to a small buffer).
size_t checked_nbytes(const Shape& sizes, size_t element_size, const char* op);

// Row-major strides (in elements) for the given sizes.
Shape contiguous_strides(const Shape& sizes);

// Turns a possibly negative dim into [0, ndim); an error names the op when it is out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// The broadcast of two shapes (trailing dims aligned; size 1 stretches), or an error naming the op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read a tensor of `sizes`/`strides` as if it had shape `target` (broadcast dims get
// stride 0). `sizes` must broadcast to `target`.
Shape broadcast_strides(const Shape& sizes, const Shape& strides, const Shape& target);

}  // namespace ctxpool
