#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/allocator.h"
#include "core/error.h"

namespace ctxpool {

namespace {
// 64-byte aligned host memory: whole cache lines, and what SIMD loads like.
class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t nbytes, int) override {
    if (nbytes == 0) return nullptr;
    const size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    CTXPOOL_CHECK(p != nullptr, "cpu allocator: out of memory allocating ", nbytes, " bytes");
    return p;
  }
  void deallocate(void* ptr, size_t, int) override { std::free(ptr); }
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
