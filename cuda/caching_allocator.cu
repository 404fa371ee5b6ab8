// The CUDA caching allocator: per-device BlockCache (cuda/block_cache.h) over cudaMalloc/cudaFree.
// Blocks are reused in stream order: every kernel runs on current_stream(), so a block freed by one
// op and handed to the next is only touched after the first op's kernels have finished.
#include <cuda_runtime.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <mutex>
#include <sstream>
#include <vector>

#include "cuda/block_cache.h"
#include "cuda/caching_allocator.h"
#include "cuda/check.h"

namespace ctxpool::cuda {

namespace {

RawAllocator device_raw_allocator(int device) {
  RawAllocator raw;
  raw.allocate = [device](size_t n) -> void* {
    set_device(device);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, n);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the cache retries after freeing
      return nullptr;
    }
    check(err, "cudaMalloc");
    return p;
  };
  raw.release = [device](void* p) {
    set_device(device);
    check(cudaFree(p), "cudaFree");
  };
  raw.describe = [device] {
    size_t free_bytes = 0, total = 0;
    std::ostringstream os;
    if (cudaMemGetInfo(&free_bytes, &total) == cudaSuccess) {
      os << "cuda:" << device << " has " << (free_bytes >> 20) << " MiB free of " << (total >> 20) << " MiB";
    } else {
      cudaGetLastError();  // clear it: a later launch check must not report it as its own
      os << "cuda:" << device;
    }
    return os.str();
  };
  return raw;
}

// CTXPOOL_CUDA_NO_CACHING=1 turns the cache off (cuda/block_cache.h): for memory checkers.
bool caching_enabled() {
  const char* env = std::getenv("CTXPOOL_CUDA_NO_CACHING");
  return env == nullptr || std::string(env) != "1";
}

class CachingAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes, int device) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return cache(device).allocate(nbytes);
  }
  void deallocate(void* ptr, size_t, int device) override {
    std::lock_guard<std::mutex> lock(mutex_);
    cache(device).deallocate(ptr);
  }
  void copy_from_host(void* dst, const void* src, size_t n, int device) override {
    if (!n) return;
    set_device(device);
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, current_stream()), "cudaMemcpy host to device");
    check(cudaStreamSynchronize(current_stream()), "cudaMemcpy host to device");  // src may be freed next
  }
  void copy_to_host(void* dst, const void* src, size_t n, int device) override {
    if (!n) return;
    set_device(device);
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, current_stream()), "cudaMemcpy device to host");
    check(cudaStreamSynchronize(current_stream()), "cudaMemcpy device to host");
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return cache(device).stats();
  }
  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    cache(device).reset_peak();
  }
  void empty_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : caches_)
      if (c) c->empty_cache();
  }

 private:
  BlockCache& cache(int device) {
    static const int count = device_count();
    CTXPOOL_CHECK(device >= 0 && device < count, "cuda: no device cuda:", device, " (this machine has ", count, ")");
    if (caches_.size() <= static_cast<size_t>(device)) caches_.resize(device + 1);
    if (!caches_[device]) caches_[device] = std::make_unique<BlockCache>(device_raw_allocator(device), caching_enabled());
    return *caches_[device];
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<BlockCache>> caches_;
};

CachingAllocator& instance() {
  static CachingAllocator* a = new CachingAllocator;  // never destroyed: see caching_allocator.h
  return *a;
}

}  // namespace

Allocator& caching_allocator() { return instance(); }

MemoryStats memory_stats(int device) { return instance().stats(device); }
void reset_peak_memory_stats(int device) { instance().reset_peak(device); }
void empty_cache() { instance().empty_all(); }

}  // namespace ctxpool::cuda
