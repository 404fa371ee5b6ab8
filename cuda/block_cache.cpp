#include "cuda/block_cache.h"

#include "core/error.h"

namespace ctxpool::cuda {

namespace {
constexpr size_t kSmallStep = 512;             // bytes
constexpr size_t kLargeStep = size_t(2) << 20; // 2 MiB
constexpr size_t kSmallLimit = size_t(1) << 20;

double mib(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }
}  // namespace

size_t BlockCache::round_size(size_t nbytes) {
  const size_t step = nbytes <= kSmallLimit ? kSmallStep : kLargeStep;
  return (nbytes + step - 1) / step * step;
}

void* BlockCache::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t size = caching_ ? round_size(nbytes) : nbytes;
  void* ptr = nullptr;
  auto bin = free_.find(size);
  if (bin != free_.end() && !bin->second.empty()) {
    ptr = bin->second.back();
    bin->second.pop_back();
  } else {
    ptr = raw_.allocate(size);
    if (ptr == nullptr) {  // out of memory: the cache may hold enough in other bins
      empty_cache();
      ptr = raw_.allocate(size);
    }
    CTXPOOL_CHECK(ptr != nullptr, "cuda: out of memory allocating ", mib(size), " MiB (tensors hold ",
                  mib(stats_.allocated), " MiB, peak ", mib(stats_.peak_allocated), " MiB; ",
                  raw_.describe ? raw_.describe() : std::string("no device details"),
                  "). Use a smaller batch or model, or free tensors you no longer need");
    ++stats_.device_mallocs;
    stats_.reserved += size;
  }
  live_[ptr] = size;
  stats_.allocated += size;
  if (stats_.allocated > stats_.peak_allocated) stats_.peak_allocated = stats_.allocated;
  return ptr;
}

void BlockCache::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  const auto it = live_.find(ptr);
  CTXPOOL_CHECK(it != live_.end(), "cuda allocator: freeing a pointer it did not allocate (", ptr, ")");
  stats_.allocated -= it->second;
  if (caching_) {
    free_[it->second].push_back(ptr);
  } else {
    raw_.release(ptr);
    ++stats_.device_frees;
    stats_.reserved -= it->second;
  }
  live_.erase(it);
}

void BlockCache::empty_cache() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      raw_.release(p);
      ++stats_.device_frees;
      stats_.reserved -= size;
    }
    blocks.clear();
  }
  free_.clear();
}

}  // namespace ctxpool::cuda
