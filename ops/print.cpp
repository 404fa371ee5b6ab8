// Printing a tensor like PyTorch: tensor([[ 0.1234, -1.0000], ...], dtype=float64, requires_grad=True)
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "ops/op_utils.h"

namespace ctxpool {

namespace {

constexpr int64_t kSummarizeAbove = 1000;  // elements; larger tensors show 3 items per edge
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, DType dtype, bool use_sci) {
  std::ostringstream os;
  if (dtype == kBool) return v != 0 ? "True" : "False";
  if (dtype == kInt64) {
    os << static_cast<int64_t>(v);
    return os.str();
  }
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (use_sci) {
    os << std::scientific << std::setprecision(4) << v;
  } else {
    os << std::fixed << std::setprecision(4) << v;
  }
  return os.str();
}

struct Printer {
  const std::vector<double>& values;
  const Shape& sizes;
  DType dtype;
  bool summarize;
  bool use_sci;
  size_t width;

  void print(std::ostream& os, int64_t dim, int64_t offset, int indent) const {
    const int64_t nd = static_cast<int64_t>(sizes.size());
    if (nd == 0) {
      os << format_value(values[0], dtype, use_sci);
      return;
    }
    int64_t inner = 1;
    for (int64_t d = dim + 1; d < nd; ++d) inner *= sizes[d];
    const int64_t n = sizes[dim];
    os << '[';
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
        os << (dim == nd - 1 ? "..., " : "...,\n" + std::string(indent + 1, ' '));
        i = n - kEdgeItems;
      }
      if (dim == nd - 1) {
        const std::string s = format_value(values[offset + i], dtype, use_sci);
        os << std::string(width > s.size() ? width - s.size() : 0, ' ') << s;
      } else {
        print(os, dim + 1, offset + i * inner, indent + 1);
      }
      if (i + 1 < n) os << (dim == nd - 1 ? ", " : ",\n" + std::string(nd - dim - 2, '\n') + std::string(indent + 1, ' '));
    }
    os << ']';
  }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  const Tensor host = t.device().is_cpu() ? t : ops::contiguous(t.detach()).cpu();
  const std::vector<double> values = host.to_vector<double>();
  double max_abs = 0, min_abs = INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    max_abs = std::max(max_abs, std::abs(v));
    if (v != 0) min_abs = std::min(min_abs, std::abs(v));
  }
  const bool use_sci = is_floating(t.dtype()) && (max_abs >= 1e8 || (min_abs < 1e-4 && min_abs > 0));
  size_t width = 0;
  for (double v : values) width = std::max(width, format_value(v, t.dtype(), use_sci).size());
  Printer printer{values, t.sizes(), t.dtype(), t.numel() > kSummarizeAbove, use_sci, width};

  os << "tensor(";
  if (t.numel() == 0) {
    os << "[]";
  } else {
    printer.print(os, 0, 0, 7);
  }
  if (t.numel() == 0 && t.dim() != 1) os << ", size=" << t.sizes();
  if (t.dtype() != kFloat32 && t.dtype() != kInt64 && t.dtype() != kBool) os << ", dtype=" << t.dtype();
  if (t.device().is_cuda()) os << ", device='" << t.device() << "'";
  if (t.grad_fn()) {
    os << ", grad_fn=<" << t.grad_fn()->name() << ">";
  } else if (t.requires_grad()) {
    os << ", requires_grad=True";
  }
  return os << ')';
}

}  // namespace ctxpool
