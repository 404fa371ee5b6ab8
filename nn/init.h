// Parameter initialisers (in place, without recording a graph), drawing from the default generator.
// Fan-in/fan-out follow PyTorch: for a weight [out, in, ...], fan_in = in * receptive field.
#pragma once
#include "core/tensor.h"

namespace ctxpool::nn::init {

void normal_(Tensor& t, double mean = 0.0, double std = 1.0);
void uniform_(Tensor& t, double low = 0.0, double high = 1.0);
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0);
// U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky relu slope a).
void kaiming_uniform_(Tensor& t, double a = 0.0);
// N(0, std^2) with std = gain / sqrt(fan_in).
void kaiming_normal_(Tensor& t, double a = 0.0);

int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);

}  // namespace ctxpool::nn::init
