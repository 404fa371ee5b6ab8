// Branch-free float versions of exp, tanh and erf that the compiler can vectorise (the C library's
// expf/tanhf are calls the loop cannot vectorise). float64 kernels keep using <cmath>, so gradchecks
// run against the library functions. Accuracy (tests/ops/test_fast_math.cpp): a few float ulps.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace ctxpool::cpu {

// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2)/2; exp(r) by a degree-6 polynomial
// (Cephes' minimax coefficients). ln 2 is split in two parts so that r is exact.
[[gnu::always_inline]] inline float fast_exp(float x) {
  // Plain comparisons instead of fmin/fmax/floor: they compile to vector instructions on any x86-64.
  float c = x < -87.33f ? -87.33f : x;
  c = c > 88.7228f ? 88.7228f : c;
  const float t = c * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  const float r = c - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  // 2^n as two factors 2^h * 2^(n-h), each with a normal exponent, for n in [-126, 128].
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t h = ni >> 1;
  const float scale1 = std::bit_cast<float>((h + 127) << 23);
  const float scale2 = std::bit_cast<float>((ni - h + 127) << 23);
  float y = e * scale1 * scale2;
  y = x < -87.33f ? 0.0f : y;  // below FLT_MIN: flushed to zero
  y = x > 88.7228f ? std::numeric_limits<float>::infinity() : y;
  return x != x ? x : y;
}

// tanh: an odd Taylor polynomial near 0 (where 1 - e^{-2|x|} would cancel), else
// sign(x) (1 - e) / (1 + e) with e = exp(-2|x|).
[[gnu::always_inline]] inline float fast_tanh(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float x2 = x * x;
  float p = -929569.0f / 638512875.0f;
  p = p * x2 + 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x + x * x2 * p;
  const float e = fast_exp(-2.0f * ax);
  const float mag = (1.0f - e) / (1.0f + e);
  const float large = x < 0.0f ? -mag : mag;
  const float y = ax < 0.4f ? small : large;
  return x != x ? x : y;
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7): good for gelu, where it is added
// to 1; not exported as a general erf.
[[gnu::always_inline]] inline float fast_erf(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * fast_exp(-ax * ax);
  return x < 0.0f ? -y : y;
}

// float goes through the vectorisable versions above, double through <cmath>.
[[gnu::always_inline]] inline float exp_of(float x) { return fast_exp(x); }
inline double exp_of(double x) { return std::exp(x); }
[[gnu::always_inline]] inline float tanh_of(float x) { return fast_tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }
[[gnu::always_inline]] inline float erf_of(float x) { return fast_erf(x); }
inline double erf_of(double x) { return std::erf(x); }

// Sum of p[0..n) accumulated in double (int64 for integers) with eight independent partial sums
// combined in a fixed order: vectorisable, and the same result on every run and thread count.
template <typename T>
auto sum_of(const T* p, int64_t n) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  Acc acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<Acc>(p[i + k]);
  for (; i < n; ++i) acc[i % 8] += static_cast<Acc>(p[i]);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace ctxpool::cpu
