// Seeded counter-based RNG (Philox-4x32-10). The i-th random number of a call depends only on
// (seed, offset, i), never on the thread count or the device, so the same seed gives the same
// tensors on CPU and GPU and with any CTXPOOL_NUM_THREADS.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>

namespace ctxpool {

// One Philox-4x32-10 block: four 32-bit random words for (counter, key).
std::array<uint32_t, 4> philox4x32(uint64_t counter, uint64_t key);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  // How many Philox blocks have been used: with the seed, the whole state (saved in checkpoints).
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset);

  // Reserves `blocks` Philox blocks: the key (the seed) and the first block's counter, read together
  // under the lock so that a concurrent manual_seed cannot pair a new key with an old offset.
  struct Blocks {
    uint64_t key, first;
  };
  Blocks reserve(uint64_t blocks);

  // Fills out[0..n) with U[0, 1) / N(0, 1) numbers.
  template <typename T> void uniform(T* out, int64_t n);
  template <typename T> void normal(T* out, int64_t n);

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
  std::mutex mutex_;
};

// The process-wide generator used by randn, rand, dropout and initialisers.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace ctxpool
