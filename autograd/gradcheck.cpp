#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"

namespace ctxpool::autograd {

namespace {

// Pointer to element i (row-major index) of a float64 CPU tensor, whatever its strides.
double* element(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.sizes()[d]) * t.strides()[d];
    i /= t.sizes()[d];
  }
  return t.data_ptr<double>() + off;
}

// Runs f with grad mode on: f may itself call backward (gradgradcheck's first-derivative function).
std::vector<std::vector<double>> flat_outputs(const FunctionN& f, const std::vector<Tensor>& in) {
  std::vector<std::vector<double>> out;
  for (const Tensor& t : f(in)) out.push_back(t.to_vector<double>());
  return out;
}

}  // namespace

GradcheckResult gradcheck(const FunctionN& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  std::vector<size_t> checked;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    CTXPOOL_CHECK(x.dtype() == kFloat64 && x.device().is_cpu(), "gradcheck: input ", k,
                  " must be a float64 CPU tensor, got ", x.dtype(), " on ", x.device());
    checked.push_back(k);
  }
  CTXPOOL_CHECK(!checked.empty(), "gradcheck: no input requires grad");

  std::vector<Tensor> outputs = f(inputs);
  std::vector<Tensor> wrt;
  for (size_t k : checked) wrt.push_back(inputs[k]);

  GradcheckResult result;
  std::ostringstream report;
  int mismatches = 0;
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& out = outputs[o];
    const int64_t n_out = out.numel();
    // Analytic: row i of the Jacobian is the gradient of out[i] (one backward per element).
    std::vector<std::vector<std::vector<double>>> analytic(checked.size());
    for (int64_t i = 0; i < n_out; ++i) {
      std::vector<Tensor> g(checked.size());
      if (out.requires_grad()) {
        Tensor onehot = zeros(out.sizes(), out.dtype());
        onehot.data_ptr<double>()[i] = 1.0;
        g = grad({out}, wrt, {onehot}, /*retain_graph=*/true, false, /*allow_unused=*/true);
      }
      for (size_t c = 0; c < checked.size(); ++c) {
        analytic[c].push_back(g[c].defined() ? g[c].to_vector<double>()
                                             : std::vector<double>(wrt[c].numel(), 0.0));
      }
    }
    // Numeric: perturb each input element both ways.
    for (size_t c = 0; c < checked.size(); ++c) {
      const Tensor& x = wrt[c];
      for (int64_t j = 0; j < x.numel(); ++j) {
        double* p = element(x, j);
        const double saved = *p;
        *p = saved + opt.eps;
        const auto plus = flat_outputs(f, inputs);
        *p = saved - opt.eps;
        const auto minus = flat_outputs(f, inputs);
        *p = saved;
        for (int64_t i = 0; i < n_out; ++i) {
          const double numeric = (plus[o][i] - minus[o][i]) / (2 * opt.eps);
          const double a = analytic[c][i][j];
          if (!(std::abs(a - numeric) <= opt.atol + opt.rtol * std::abs(numeric))) {
            result.ok = false;
            if (mismatches++ < 8)
              report << "output " << o << " element " << i << " w.r.t. input " << checked[c]
                     << " element " << j << ": analytic " << a << " vs numeric " << numeric
                     << '\n';
          }
        }
      }
    }
  }
  if (!result.ok) result.message = "gradcheck: " + std::to_string(mismatches) +
                                   " Jacobian entries differ:\n" + report.str();
  return result;
}

GradcheckResult gradcheck(const Function1& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  return gradcheck(FunctionN([&](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{f(in)};
                   }),
                   inputs, opt);
}

GradcheckResult gradgradcheck(const Function1& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& opt) {
  // v: a fixed random direction for the first backward, itself an input of the checked function.
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = f(inputs);
  }
  Tensor v = randn(probe.sizes(), kFloat64).requires_grad_(true);
  std::vector<Tensor> all = inputs;
  all.push_back(v);
  const size_t n_in = inputs.size();
  FunctionN first_grad = [&](const std::vector<Tensor>& in) {
    std::vector<Tensor> xs(in.begin(), in.begin() + n_in);
    std::vector<Tensor> wrt;
    for (const Tensor& x : xs)
      if (x.requires_grad()) wrt.push_back(x);
    Tensor y = f(xs);
    std::vector<Tensor> g = grad({y}, wrt, {in[n_in]}, true, /*create_graph=*/true, true);
    for (size_t i = 0; i < g.size(); ++i)
      if (!g[i].defined()) g[i] = zeros(wrt[i].sizes(), kFloat64);
    return g;
  };
  return gradcheck(first_grad, all, opt);
}

}  // namespace ctxpool::autograd
