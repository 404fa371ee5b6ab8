#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ctxpool::nn::init {

namespace {
int64_t receptive_field(const Tensor& t) {
  int64_t r = 1;
  for (int64_t d = 2; d < t.dim(); ++d) r *= t.sizes()[d];
  return r;
}
void check_fans(const Tensor& t, const char* op) {
  CTXPOOL_CHECK(t.dim() >= 2, op, ": fan in/out need a tensor with at least 2 dims, got ", t.sizes());
}
}  // namespace

int64_t fan_in(const Tensor& t) {
  check_fans(t, "fan_in");
  return t.sizes()[1] * receptive_field(t);
}
int64_t fan_out(const Tensor& t) {
  check_fans(t, "fan_out");
  return t.sizes()[0] * receptive_field(t);
}

void normal_(Tensor& t, double mean, double std) {
  NoGradGuard no_grad;
  t.copy_(ops::add(ops::mul(randn(t.sizes(), t.dtype()), scalar_tensor(std, t.dtype())),
                   scalar_tensor(mean, t.dtype())));
}

void uniform_(Tensor& t, double low, double high) {
  CTXPOOL_CHECK(low <= high, "uniform_: low (", low, ") is greater than high (", high, ")");
  NoGradGuard no_grad;
  t.copy_(ops::add(ops::mul(rand(t.sizes(), t.dtype()), scalar_tensor(high - low, t.dtype())),
                   scalar_tensor(low, t.dtype())));
}

void constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
}
void zeros_(Tensor& t) { constant_(t, 0.0); }
void ones_(Tensor& t) { constant_(t, 1.0); }

void xavier_uniform_(Tensor& t, double gain) {
  const double b = gain * std::sqrt(6.0 / static_cast<double>(fan_in(t) + fan_out(t)));
  uniform_(t, -b, b);
}

void kaiming_uniform_(Tensor& t, double a) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double b = gain * std::sqrt(3.0 / static_cast<double>(fan_in(t)));
  uniform_(t, -b, b);
}

void kaiming_normal_(Tensor& t, double a) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  normal_(t, 0.0, gain / std::sqrt(static_cast<double>(fan_in(t))));
}

}  // namespace ctxpool::nn::init
