// Per-thread scratch memory for CPU kernels: a few numbered slots per thread, each kept and grown
// between calls (OpenMP's pool threads live on), 64-byte aligned. Fresh memory from the system would
// cost a page fault per 4 KiB page on every call; a kernel that needs a buffer of a few hundred KiB
// per call would spend a tenth of its time there.
#pragma once
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace ctxpool::cpu {

// Slots in use: 0, 1 the GEMM's packed panels (sgemm_avx512.cpp); 2, 3 conv2d's columns and rows.
constexpr int kScratchSlots = 4;

// At least `count` elements of T in this thread's slot `slot`; the contents are not kept from the
// slot's previous use. Valid until this thread asks for the same slot again.
template <typename T>
T* thread_scratch(int slot, int64_t count) {
  struct Slot {
    void* data = nullptr;
    size_t bytes = 0;
    ~Slot() { std::free(data); }
  };
  thread_local Slot slots[kScratchSlots];
  Slot& s = slots[slot];
  const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
  if (s.bytes < bytes) {
    std::free(s.data);
    s.data = std::aligned_alloc(64, bytes);
    if (s.data == nullptr) s.bytes = 0;
    CTXPOOL_CHECK(s.data != nullptr, "cpu kernel: cannot allocate ", bytes, " bytes of scratch memory");
    s.bytes = bytes;
  }
  return static_cast<T*>(s.data);
}

}  // namespace ctxpool::cpu
