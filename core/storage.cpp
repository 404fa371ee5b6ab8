#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"

namespace ctxpool {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBlocks = false;  // let AddressSanitizer see every allocation and free
#else
constexpr bool kCacheBlocks = true;
#endif

// 64-byte aligned host memory: whole cache lines, and what SIMD loads like. Freed blocks of 64 KiB
// and more are kept per size and handed out again: a training step allocates the same sizes every
// step, and fresh pages from the OS cost a page fault each (a 512x512 matmul twice as slow).
class CpuAllocator : public Allocator {
 public:
  static constexpr size_t kMinCached = 64 << 10;
  static constexpr size_t kMaxCachedTotal = size_t(8) << 30;

  void* allocate(size_t nbytes, int) override {
    if (nbytes == 0) return nullptr;
    const size_t rounded = round(nbytes);
    if (kCacheBlocks && rounded >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= rounded;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    CTXPOOL_CHECK(p != nullptr, "cpu allocator: out of memory allocating ", nbytes, " bytes");
    return p;
  }
  void deallocate(void* ptr, size_t nbytes, int) override {
    const size_t rounded = round(nbytes);
    if (kCacheBlocks && ptr && rounded >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + rounded <= kMaxCachedTotal) {
        free_[rounded].push_back(ptr);
        cached_bytes_ += rounded;
        return;
      }
    }
    std::free(ptr);
  }
  ~CpuAllocator() override {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
  }

 private:
  static size_t round(size_t n) { return (n + 4095) / 4096 * 4096; }
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
  void copy_from_host(void* dst, const void* src, size_t n, int) override {
    if (n) std::memcpy(dst, src, n);
  }
  void copy_to_host(void* dst, const void* src, size_t n, int) override {
    if (n) std::memcpy(dst, src, n);
  }
};

Allocator*& slot(DeviceType type) {
  static Allocator* table[2] = {nullptr, nullptr};
  return table[static_cast<int>(type)];
}
}  // namespace

Allocator* allocator_for(DeviceType type) {
  if (type == DeviceType::CPU) {
    static CpuAllocator cpu;
    return &cpu;
  }
  Allocator* a = slot(type);
  CTXPOOL_CHECK(a != nullptr, "allocator: no allocator for ", Device(type),
                " (ctxpool was built without CUDA, or no CUDA device is present)");
  return a;
}

void register_allocator(DeviceType type, Allocator* allocator) { slot(type) = allocator; }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device.type)->allocate(nbytes, device.index);
}

Storage::~Storage() {
  if (data_) allocator_for(device_.type)->deallocate(data_, nbytes_, device_.index);
}

}  // namespace ctxpool
