// Per-device allocators. core knows only the table; the CUDA backend registers its allocator here at
// start-up, so core never includes cuda/.
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
void register_allocator(DeviceType type, Allocator* allocator);

}  // namespace ctxpool
