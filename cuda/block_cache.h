// The caching allocator's bookkeeping, independent of CUDA so that it is tested on any machine:
// size-binned free lists over a raw allocator. A training loop frees and allocates the same sizes
// every step, so after the first step every request is served from the cache and cudaMalloc (slow, and
// synchronising) is no longer called. Sizes are rounded up (512 B steps below 1 MiB, 2 MiB steps
// above) so that nearly equal requests share a bin. Not thread-safe by itself: the owner locks.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

struct RawAllocator {
  std::function<void*(size_t)> allocate;  // nullptr when out of memory; throws on other errors
  std::function<void(void*)> release;
  std::function<std::string()> describe;  // e.g. "cuda:0 has 1.2 GiB free of 139 GiB", for errors
};

class BlockCache {
 public:
  // caching = false: every block is obtained at its exact size and released when freed, so a memory
  // checker (compute-sanitizer, or ASan under the CUDA emulator) sees each tensor's true bounds.
  // Slow (a cudaMalloc and a cudaFree per tensor): for debugging (CTXPOOL_CUDA_NO_CACHING=1).
  explicit BlockCache(RawAllocator raw, bool caching = true) : raw_(std::move(raw)), caching_(caching) {}

  // A block of at least nbytes (nullptr for 0). Out of memory: returns every cached block to the raw
  // allocator and tries once more, then throws an Error naming the sizes involved.
  void* allocate(size_t nbytes);
  // Back to its bin's free list (not to the raw allocator).
  void deallocate(void* ptr);
  // Every cached block back to the raw allocator.
  void empty_cache();

  const MemoryStats& stats() const { return stats_; }
  void reset_peak() { stats_.peak_allocated = stats_.allocated; }

  static size_t round_size(size_t nbytes);

 private:
  RawAllocator raw_;
  bool caching_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks of that size
  std::unordered_map<void*, size_t> live_;     // block -> its rounded size
  MemoryStats stats_;
};

}  // namespace ctxpool::cuda
