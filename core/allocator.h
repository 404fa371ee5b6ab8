// Per-device allocators. core knows only the table and never includes cuda/: the first request for a
// CUDA allocator calls register_cuda_allocator(), which the CUDA runtime defines (cuda/runtime.cu; a
// no-op in cuda/stub.cpp without the toolkit). An explicit call, so nothing relies on a static
// initialiser being linked from the static library.
#pragma once
#include <cstddef>

#include "core/device.h"

namespace ctxpool {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* ptr, size_t nbytes, int device_index) = 0;
  // Byte copies between this device's memory and the host (or within the device); lets core move
  // data (factories, printing, item()) without knowing the backend.
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes, int device_index) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes, int device_index) = 0;
};

// The allocator for a device type; an error when none is registered (e.g. CUDA in a CPU-only build).
Allocator* allocator_for(DeviceType type);
// Replaces a device type's allocator (the CUDA runtime's registration; tests install fakes).
void register_allocator(DeviceType type, Allocator* allocator);
// Defined in cuda/: registers the caching allocator for DeviceType::CUDA, or nothing without CUDA.
void register_cuda_allocator();

// The CPU allocator's counters (core/storage.cpp), the CPU twin of cuda::memory_stats(). In the steady
// state of a training loop `system_allocs` stays flat: every block comes from the cache.
struct CpuMemoryStats {
  size_t allocated = 0;       // bytes held by live storages (rounded up to 4 KiB)
  size_t cached = 0;          // bytes of freed blocks kept for reuse
  size_t peak_allocated = 0;  // the largest `allocated` since start-up or reset_cpu_peak_memory()
  int64_t system_allocs = 0;  // blocks obtained from the C library so far
  int64_t cache_hits = 0;     // requests served from the cache so far
};
CpuMemoryStats cpu_memory_stats();
void reset_cpu_peak_memory();

// Debugging aid: every CPU block handed out (new or from the cache) is first filled with 0xFF bytes,
// which read as NaN in float32 / float64 and -1 in int64, so an output a kernel leaves unwritten
// shows up. Off by default; CTXPOOL_POISON=1 turns it on at start-up.
void set_poison_allocations(bool on);
bool poison_allocations();

}  // namespace ctxpool
