// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and the
// word-to-uniform conversion, as inline functions for both the host (core/random.cpp, the CPU kernels)
// and CUDA kernels: one definition, so a seed gives the same numbers on every device.
#pragma once
#include <cstdint>

#include "core/dtype.h"  // CTXPOOL_HOST_DEVICE

namespace ctxpool {

// Four random 32-bit words for (counter, key): ten rounds of two 32x32->64 multiplies and a key bump.
CTXPOOL_HOST_DEVICE inline void philox4x32_10(uint64_t counter, uint64_t key, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// A 32-bit word to a uniform in [0, 1): 24 bits for float (exactly representable), 32 for double.
template <typename T> CTXPOOL_HOST_DEVICE inline T philox_unit(uint32_t u);
template <> CTXPOOL_HOST_DEVICE inline float philox_unit<float>(uint32_t u) { return (u >> 8) * (1.0f / 16777216.0f); }
template <> CTXPOOL_HOST_DEVICE inline double philox_unit<double>(uint32_t u) { return u * (1.0 / 4294967296.0); }

// Uniforms number 4b .. 4b+3 of a stream that starts at Philox block `first`: block first + b.
// out_n of them are written (fewer than 4 at the end of a tensor).
template <typename T>
CTXPOOL_HOST_DEVICE inline void philox_uniform_block(uint64_t first, uint64_t key, int64_t b, T* out, int out_n) {
  uint32_t words[4];
  philox4x32_10(first + static_cast<uint64_t>(b), key, words);
  for (int k = 0; k < out_n; ++k) out[k] = philox_unit<T>(words[k]);
}

}  // namespace ctxpool
