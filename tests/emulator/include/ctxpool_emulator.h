// The CUDA emulator's scheduler interface: kernel launches and the intrinsics that need the other
// threads of a block (__syncthreads, __syncwarp, warp shuffles). See tests/emulator/README.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>

namespace ctxpool_emu {

// Runs body once per thread of every block: blocks one after another, the threads of a block as
// fibers that switch only at barriers, so a missing barrier shows up as a wrong result or a reported
// deadlock. On a bad configuration or a fault the emulator records an error for cudaGetLastError.
void run_kernel(const char* name, const std::function<void()>& body, dim3 grid, dim3 block, size_t shared_bytes);

// What `name<<<grid, block, shared_bytes, stream>>>(args)` becomes (translate_cu.py): the arguments
// are evaluated once, on the host, as nvcc does; every thread gets its own copies (kernel parameters
// are passed by value).
template <typename Body, typename Args>
void launch(const char* name, const Body& body, Args args, dim3 grid, dim3 block, size_t shared_bytes = 0,
            cudaStream_t = 0) {
  run_kernel(name, [&] { std::apply(body, args); }, grid, block, shared_bytes);
}

// The order the threads of a block (and the blocks of a grid) run in between barriers. A kernel that is
// right gives the same result in both; CTXPOOL_EMU_ORDER=reverse sets Reverse for a whole run.
enum class Order { Forward, Reverse };
void set_order(Order order);

void block_barrier();
void warp_barrier(unsigned mask);
// Exchanges a value (its bits) among the lanes of the calling warp: returns that of lane (lane ^ lane_mask).
uint64_t shuffle_xor(unsigned mask, uint64_t bits, int lane_mask, int width);

}  // namespace ctxpool_emu

inline void __syncthreads() { ctxpool_emu::block_barrier(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ctxpool_emu::warp_barrier(mask); }

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "__shfl_xor_sync: 1 to 8 byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = ctxpool_emu::shuffle_xor(mask, bits, lane_mask, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
