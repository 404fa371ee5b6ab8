#include "core/storage.h"

#include <algorithm>
#include <atomic>
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

// 64-byte aligned host memory: whole cache lines, and what SIMD loads like. Freed blocks are kept per
// size and handed out again: a training step allocates the same sizes every step, and fresh pages from
// the OS cost a page fault each (a 512x512 matmul twice as slow). Sizes round up to 64 B below 64 KiB
// and to 4 KiB above, so a scalar does not hold a page.
class CpuAllocator : public Allocator {
 public:
  static constexpr size_t kMaxCachedTotal = size_t(8) << 30;

  void* allocate(size_t nbytes, int) override {
    if (nbytes == 0) return nullptr;
    const size_t rounded = round(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocated += rounded;
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    if (kCacheBlocks) {
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached -= rounded;
        ++stats_.cache_hits;
        if (poison_allocations()) std::memset(p, 0xFF, rounded);
        return p;
      }
    }
    void* p = std::aligned_alloc(64, rounded);
    if (p != nullptr && poison_allocations()) std::memset(p, 0xFF, rounded);
    if (p == nullptr) {
      stats_.allocated -= rounded;
      detail::fail("cpu allocator: out of memory allocating ", nbytes, " bytes (", stats_.allocated,
                   " bytes live, ", stats_.cached, " cached)");
    }
    ++stats_.system_allocs;
    return p;
  }
  void deallocate(void* ptr, size_t nbytes, int) override {
    if (ptr == nullptr) return;
    const size_t rounded = round(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocated -= rounded;
    if (kCacheBlocks && stats_.cached + rounded <= kMaxCachedTotal) {
      free_[rounded].push_back(ptr);
      stats_.cached += rounded;
      return;
    }
    std::free(ptr);
  }
  CpuMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_allocated = stats_.allocated;
  }
  ~CpuAllocator() override {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
  }

 private:
  static size_t round(size_t n) {
    const size_t step = n < (size_t(64) << 10) ? 64 : 4096;
    return (n + step - 1) / step * step;
  }
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  CpuMemoryStats stats_;
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

// Never destroyed: a tensor in static storage (a test's cached golden file, a user's global) may be
// freed at exit after a function-local static allocator would already be gone.
CpuAllocator& cpu_allocator() {
  static CpuAllocator* cpu = new CpuAllocator;
  return *cpu;
}

}  // namespace

std::atomic<int>& poison_flag() {
  static std::atomic<int> flag{[] {
    const char* env = std::getenv("CTXPOOL_POISON");
    return env != nullptr && env[0] != '\0' && env[0] != '0' ? 1 : 0;
  }()};
  return flag;
}

void set_poison_allocations(bool on) { poison_flag().store(on ? 1 : 0); }
bool poison_allocations() { return poison_flag().load(std::memory_order_relaxed) != 0; }

CpuMemoryStats cpu_memory_stats() { return cpu_allocator().stats(); }
void reset_cpu_peak_memory() { cpu_allocator().reset_peak(); }

Allocator* allocator_for(DeviceType type) {
  if (type == DeviceType::CPU) return &cpu_allocator();
  static std::once_flag cuda_registered;  // the CUDA runtime's allocator, on first use (unless a test's fake is in)
  std::call_once(cuda_registered, [] {
    if (slot(DeviceType::CUDA) == nullptr) register_cuda_allocator();
  });
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
