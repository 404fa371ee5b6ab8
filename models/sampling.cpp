#include "models/sampling.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ctxpool::models {

std::vector<int64_t> sample(nn::Module& model, std::vector<int64_t> ids, const SampleOptions& o, Generator& gen) {
  CTXPOOL_CHECK(o.temperature > 0, "sample: temperature must be positive, got ", o.temperature);
  CTXPOOL_CHECK(!ids.empty(), "sample: the prompt must have at least one token");
  NoGradGuard no_grad;
  const std::vector<Tensor> params = model.parameters();
  const Device device = params.empty() ? kCPU : params[0].device();  // the prompt goes where the model is
  const bool was_training = model.is_training();
  model.eval();
  for (int64_t step = 0; step < o.length; ++step) {
    const int64_t t = std::min<int64_t>(static_cast<int64_t>(ids.size()), o.context);
    const std::vector<int64_t> window(ids.end() - t, ids.end());
    const Tensor logits = model.forward(from_vector(window, {1, t}, kInt64).to(device));
    std::vector<double> z = logits.select(1, t - 1).reshape({-1}).to_vector<double>();
    const int64_t v = static_cast<int64_t>(z.size());
    for (double& x : z) x /= o.temperature;
    if (o.top_k > 0 && o.top_k < v) {
      std::vector<double> sorted = z;
      std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<double>());
      const double kth = sorted[o.top_k - 1];
      for (double& x : z)
        if (x < kth) x = -INFINITY;
    }
    const double mx = *std::max_element(z.begin(), z.end());
    double total = 0;
    for (double& x : z) total += (x = std::exp(x - mx));
    double u = 0;
    gen.uniform(&u, 1);
    u *= total;
    int64_t next = v - 1;
    for (int64_t i = 0; i < v; ++i) {
      if (u < z[i]) {
        next = i;
        break;
      }
      u -= z[i];
    }
    ids.push_back(next);
  }
  model.train(was_training);
  return ids;
}

}  // namespace ctxpool::models
