#include "core/random.h"

#include <cmath>

#include "core/parallel.h"
#include "core/philox.h"

namespace ctxpool {

std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key) {
  std::array<uint32_t, 4> out;
  philox4x32_10(counter, key, out.data());
  return out;
}

void Generator::manual_seed(uint64_t seed) { set_state(seed, 0); }

void Generator::set_state(uint64_t seed, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = offset;
}

Generator::Blocks Generator::reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Blocks out{seed_, offset_};
  offset_ += blocks;
  return out;
}

namespace {

// Reserves the Philox blocks for n numbers (four per block) and calls f(i, words) for each block,
// i being the index of its first number: in parallel, with results independent of the threads.
template <typename F>
void for_each_block(Generator& gen, int64_t n, const F& f) {
  const uint64_t blocks = static_cast<uint64_t>((n + 3) / 4);
  // A named struct, not a structured binding: clang 14 (the fuzz build) cannot capture bindings.
  const Generator::Blocks range = gen.reserve(blocks);
  parallel_for(0, static_cast<int64_t>(blocks), 1024, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(4 * b, philox4x32(range.first + b, range.key));
  });
}

}  // namespace

template <typename T>
void Generator::uniform(T* out, int64_t n) {
  for_each_block(*this, n, [&](int64_t i, const std::array<uint32_t, 4>& r) {
    for (int64_t k = 0; k < 4 && i + k < n; ++k) out[i + k] = philox_unit<T>(r[k]);
  });
}

template <typename T>
void Generator::normal(T* out, int64_t n) {
  for_each_block(*this, n, [&](int64_t i, const std::array<uint32_t, 4>& r) {
    // Box-Muller on two pairs of words; u1 in (0, 1] keeps the log finite.
    for (int pair = 0; pair < 2; ++pair) {
      const double u1 = (r[2 * pair] + 1.0) * (1.0 / 4294967296.0);
      const double u2 = r[2 * pair + 1] * (1.0 / 4294967296.0);
      const double radius = std::sqrt(-2.0 * std::log(u1));
      const double angle = 2.0 * M_PI * u2;
      const int64_t j = i + 2 * pair;
      if (j < n) out[j] = static_cast<T>(radius * std::cos(angle));
      if (j + 1 < n) out[j + 1] = static_cast<T>(radius * std::sin(angle));
    }
  });
}

template void Generator::uniform<float>(float*, int64_t);
template void Generator::uniform<double>(double*, int64_t);
template void Generator::normal<float>(float*, int64_t);
template void Generator::normal<double>(double*, int64_t);

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace ctxpool
