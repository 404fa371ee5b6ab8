// Finite-difference checks of analytic gradients (central differences, float64).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ctxpool::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatches, with indices and both values, when !ok
  explicit operator bool() const { return ok; }
};

using FunctionN = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
using Function1 = std::function<Tensor(const std::vector<Tensor>&)>;

// Compares, for every input that requires grad and every output element, the gradient from
// backward with (f(x + eps) - f(x - eps)) / (2 eps). Inputs must be float64 CPU tensors.
GradcheckResult gradcheck(const FunctionN& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});
GradcheckResult gradcheck(const Function1& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Checks second derivatives: gradcheck of x, v -> grad(f(x), x, v, create_graph=true).
GradcheckResult gradgradcheck(const Function1& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options = {});

}  // namespace ctxpool::autograd
