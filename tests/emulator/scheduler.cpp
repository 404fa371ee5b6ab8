// The CUDA emulator's kernel scheduler: every thread of a block is a fiber (its own stack) on the host
// thread that launched the kernel; blocks run one after another. A fiber runs until it reaches a
// barrier (__syncthreads, __syncwarp, a shuffle) and then yields; when every live thread the barrier
// waits for has arrived, they all become runnable again. So between two barriers the threads of a
// block run one at a time, in a fixed order (CTXPOOL_EMU_ORDER=reverse runs them, and the blocks,
// the other way round): a kernel that reads what another thread wrote without a barrier in between
// gives different results in the two orders, and a barrier that not every thread reaches is reported
// as a deadlock naming the kernel, not a hang.
//
// What this does not emulate: concurrency between blocks, the memory model, timing, resource limits
// other than the launch configuration's. See tests/emulator/README.md.
#include <sys/mman.h>

#if !defined(__x86_64__)
#error "the CUDA emulator switches fibers with x86-64 code (ctxpool_emu_switch_stack)"
#endif

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_runtime.h"

// CTXPOOL_EMU_ASAN (set by emulator.cmake in a sanitizer build, where this file itself is left
// uninstrumented): tell AddressSanitizer about every stack switch.
#ifdef CTXPOOL_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim{1, 1, 1};
dim3 gridDim{1, 1, 1};

// A fiber switch saves the callee-saved registers on the old stack, swaps stack pointers and restores
// them from the new one: about 20 instructions, where swapcontext also saves the signal mask with a
// system call on every switch (the emulator switches a few times per thread per barrier).
// switch_stack(&save_sp, new_sp): saves the caller's stack pointer in *save_sp and resumes new_sp.
extern "C" void ctxpool_emu_switch_stack(void** save_sp, void* new_sp);
asm(R"(
  .pushsection .text
  .globl ctxpool_emu_switch_stack
  .type ctxpool_emu_switch_stack, @function
ctxpool_emu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ctxpool_emu_switch_stack, .-ctxpool_emu_switch_stack
  .popsection
)");

namespace ctxpool_emu {

// Recorded by a failed launch, returned (once) by cudaGetLastError (runtime.cpp).
void set_launch_error(cudaError_t error, const std::string& message);

namespace {

constexpr int kWarpSize = 32;
constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;  // kernels keep small arrays on the stack; ASan's frames are larger
constexpr size_t kPageBytes = 4096;

enum class State { Runnable, AtBlockBarrier, AtWarpBarrier, AtShuffle, Done };

struct Fiber {
  void* sp = nullptr;     // its saved stack pointer while it does not run
  char* stack = nullptr;  // kStackBytes above a guard page, reused by every launch
  State state = State::Done;
  uint3 index{0, 0, 0};
  unsigned mask = 0;  // of the __syncwarp or shuffle it waits at
  int source_lane = 0;
  uint64_t value = 0;   // what this lane offers to the shuffle (its bits)
  uint64_t result = 0;  // what it receives, written when the warp is released
};

struct Block {
  const std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreads);
  int count = 0;  // threads in the block
  int live = 0;   // not yet returned
  int current = -1;
  void* scheduler_sp = nullptr;  // the launching thread's, while a fiber runs
  std::string error;  // why the block could not go on (a deadlock, a shuffle with exited lanes)
#ifdef CTXPOOL_EMU_ASAN
  const void* scheduler_stack = nullptr;
  size_t scheduler_stack_size = 0;
#endif
};

Block& block() {
  static Block b;
  return b;
}

Order& order() {
  static Order o = [] {
    const char* env = std::getenv("CTXPOOL_EMU_ORDER");
    return env != nullptr && std::string(env) == "reverse" ? Order::Reverse : Order::Forward;
  }();
  return o;
}
bool reverse_order() { return order() == Order::Reverse; }

// ---- switching, with AddressSanitizer told which stack is live (else it reports false errors)

void switch_to_fiber(Block& b, int i) {
  Fiber& f = b.fibers[i];
  b.current = i;
  threadIdx = f.index;
#ifdef CTXPOOL_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
#endif
  ctxpool_emu_switch_stack(&b.scheduler_sp, f.sp);
#ifdef CTXPOOL_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  b.current = -1;
}

void switch_to_scheduler(Block& b, [[maybe_unused]] bool finished) {
  Fiber& f = b.fibers[b.current];
#ifdef CTXPOOL_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(finished ? nullptr : &fake, b.scheduler_stack, b.scheduler_stack_size);
#endif
  ctxpool_emu_switch_stack(&f.sp, b.scheduler_sp);  // a finished fiber is never resumed
#ifdef CTXPOOL_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, &b.scheduler_stack, &b.scheduler_stack_size);
#endif
}

[[noreturn]] void fiber_main() {
  Block& b = block();
#ifdef CTXPOOL_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_stack, &b.scheduler_stack_size);
#endif
  try {
    (*b.body)();
  } catch (const std::exception& e) {  // device code cannot throw; a host call in a kernel might
    if (b.error.empty()) b.error = std::string("a thread threw: ") + e.what();
  } catch (...) {
    if (b.error.empty()) b.error = "a thread threw";
  }
  b.fibers[b.current].state = State::Done;
  --b.live;
  switch_to_scheduler(b, /*finished=*/true);
  std::abort();  // unreachable
}

char* new_stack() {
  void* p = mmap(nullptr, kStackBytes + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "ctxpool CUDA emulator: cannot map a fiber stack\n");
    std::abort();
  }
  mprotect(p, kPageBytes, PROT_NONE);  // an overflowing kernel faults here instead of corrupting memory
  return static_cast<char*>(p) + kPageBytes;
}

// A new fiber's stack as ctxpool_emu_switch_stack leaves it: six zero registers, then fiber_main as the
// address `ret` jumps to, then a null return address, so fiber_main starts with the stack alignment
// of an ordinary call.
void start_fiber(Fiber& f, uint3 index) {
  if (f.stack == nullptr) f.stack = new_stack();
  f.state = State::Runnable;
  f.index = index;
  void** top = reinterpret_cast<void**>(f.stack + kStackBytes);  // 16-byte aligned
  top[-1] = nullptr;
  top[-2] = reinterpret_cast<void*>(&fiber_main);
  for (int r = 3; r <= 8; ++r) top[-r] = nullptr;
  f.sp = top - 8;
}

// ---- barriers: a fiber records what it waits for and yields; release() decides

void wait(State state) {
  Block& b = block();
  if (b.current < 0) {
    std::fprintf(stderr, "ctxpool CUDA emulator: a barrier or shuffle was called outside a kernel\n");
    std::abort();
  }
  b.fibers[b.current].state = state;
  switch_to_scheduler(b, /*finished=*/false);
}

std::string describe(const Block& b, int first, int last) {
  int counts[5] = {};
  for (int i = first; i < last; ++i) ++counts[static_cast<int>(b.fibers[i].state)];
  std::ostringstream os;
  os << counts[1] << " at __syncthreads, " << counts[2] << " at __syncwarp, " << counts[3] << " at a shuffle, "
     << counts[4] << " returned";
  return os.str();
}

// Lanes w0..w1 of a warp whose state is `state`, as a bit mask (bit i for lane i).
unsigned lanes_in(const Block& b, int w0, int w1, State state) {
  unsigned bits = 0;
  for (int i = w0; i < w1; ++i)
    if (b.fibers[i].state == state) bits |= 1u << (i - w0);
  return bits;
}

// On a GPU a warp-synchronous call whose mask names a lane that is elsewhere or has returned is
// undefined; here it is an error naming the first such lane.
bool fail_warp(Block& b, int w0, int w1, const char* call, unsigned mask, unsigned missing) {
  std::ostringstream os;
  os << "warp " << w0 / kWarpSize << ": " << call << " with mask 0x" << std::hex << mask << std::dec << " involves lane "
     << __builtin_ctz(missing) << ", which cannot take part (" << describe(b, w0, w1) << "): undefined on a GPU";
  b.error = os.str();
  return false;
}

// Frees the threads whose barrier is complete. Returns false (and sets b.error) when none can go on.
// A lane at __syncwarp or a shuffle goes on once every lane its mask names (and, for a shuffle, the
// lane it reads) waits at the same kind of call; lanes of one warp with disjoint masks go on apart.
bool release(Block& b) {
  bool released = false;
  for (int w0 = 0; w0 < b.count; w0 += kWarpSize) {
    const int w1 = std::min(b.count, w0 + kWarpSize);
    const unsigned all = w1 - w0 == kWarpSize ? ~0u : (1u << (w1 - w0)) - 1;
    const unsigned done = lanes_in(b, w0, w1, State::Done);
    for (State kind : {State::AtShuffle, State::AtWarpBarrier}) {
      const unsigned waiting = lanes_in(b, w0, w1, kind);
      if (waiting == 0) continue;
      const char* call = kind == State::AtShuffle ? "__shfl_xor_sync" : "__syncwarp";
      unsigned go = 0;
      for (int i = w0; i < w1; ++i) {
        const Fiber& f = b.fibers[i];
        if (f.state != kind) continue;
        const unsigned self = 1u << (i - w0);
        const unsigned named = f.mask | self | (kind == State::AtShuffle ? 1u << f.source_lane : 0u);
        // Lanes that have returned, or lie past the block's end, never arrive: undefined on a GPU.
        if ((named & done) != 0 || (named & ~all) != 0) return fail_warp(b, w0, w1, call, f.mask, named & (done | ~all));
        if ((f.mask & self) == 0) return fail_warp(b, w0, w1, call, f.mask, self);
        if ((named & ~waiting) == 0) go |= self;
      }
      if (go == 0) continue;
      if (kind == State::AtShuffle) {  // read every source before any lane moves on
        for (int i = w0; i < w1; ++i)
          if ((go >> (i - w0)) & 1u) b.fibers[i].result = b.fibers[w0 + b.fibers[i].source_lane].value;
      }
      for (int i = w0; i < w1; ++i)
        if ((go >> (i - w0)) & 1u) b.fibers[i].state = State::Runnable;
      released = true;
    }
  }
  if (released) return true;
  int at_block = 0;
  for (int i = 0; i < b.count; ++i) at_block += b.fibers[i].state == State::AtBlockBarrier;
  if (at_block > 0 && at_block == b.live) {
    for (int i = 0; i < b.count; ++i)
      if (b.fibers[i].state == State::AtBlockBarrier) b.fibers[i].state = State::Runnable;
    return true;
  }
  b.error = "deadlock: no barrier can complete (" + describe(b, 0, b.count) + ")";
  return false;
}

// Runs the block whose fibers are set up; false (with b.error) if it cannot finish.
bool run_block(Block& b) {
  const bool reverse = reverse_order();
  while (b.live > 0) {
    bool ran = false;
    for (int k = 0; k < b.count; ++k) {
      const int i = reverse ? b.count - 1 - k : k;
      if (b.fibers[i].state != State::Runnable) continue;
      switch_to_fiber(b, i);
      ran = true;
    }
    if (!b.error.empty()) return false;  // a thread threw
    if (!ran && b.live > 0 && !release(b)) return false;
  }
  return true;
}

std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void run_kernel(const char* name, const std::function<void()>& body, dim3 grid, dim3 block_dim, size_t shared_bytes) {
  const uint64_t threads = uint64_t(block_dim.x) * block_dim.y * block_dim.z;
  // "name<<<(grid), (block), smem>>>", for errors only (a training step makes thousands of launches).
  const auto launch_text = [&] {
    std::ostringstream os;
    os << name << "<<<(" << grid.x << ", " << grid.y << ", " << grid.z << "), (" << block_dim.x << ", "
       << block_dim.y << ", " << block_dim.z << "), " << shared_bytes << ">>>";
    return os.str();
  };
  // The limits of every GPU since sm_30 (the CUDA programming guide's table of technical specifications).
  const bool bad = threads == 0 || threads > kMaxThreads || block_dim.z > 64 || grid.x == 0 || grid.y == 0 ||
                   grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024;
  if (bad) {
    set_launch_error(cudaErrorInvalidConfiguration, launch_text() + ": invalid configuration");
    return;
  }
  std::lock_guard<std::mutex> lock(launch_mutex());
  Block& b = block();
  b.error.clear();
  b.body = &body;
  b.count = static_cast<int>(threads);
  blockDim = block_dim;
  gridDim = grid;
  const bool reverse = reverse_order();
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  for (uint64_t n = 0; n < blocks; ++n) {
    const uint64_t linear = reverse ? blocks - 1 - n : n;
    blockIdx = uint3{static_cast<unsigned>(linear % grid.x), static_cast<unsigned>(linear / grid.x % grid.y),
                     static_cast<unsigned>(linear / grid.x / grid.y)};
    for (int i = 0; i < b.count; ++i)
      start_fiber(b.fibers[i], uint3{i % block_dim.x, i / block_dim.x % block_dim.y, i / (block_dim.x * block_dim.y)});
    b.live = b.count;
    if (!run_block(b)) {
      std::ostringstream os;
      os << launch_text() << ", block (" << blockIdx.x << ", " << blockIdx.y << ", " << blockIdx.z << "): " << b.error;
      set_launch_error(cudaErrorLaunchFailure, os.str());
#ifdef CTXPOOL_EMU_ASAN
      // The abandoned frames' redzones would otherwise stay poisoned on stacks the next launch reuses.
      for (int i = 0; i < b.count; ++i) __asan_unpoison_memory_region(b.fibers[i].stack, kStackBytes);
#endif
      return;  // the stuck fibers' stacks are simply reused by the next launch
    }
  }
}

void set_order(Order o) { order() = o; }

void block_barrier() { wait(State::AtBlockBarrier); }

void warp_barrier(unsigned mask) {
  block().fibers[block().current].mask = mask;
  wait(State::AtWarpBarrier);
}

uint64_t shuffle_xor(unsigned mask, uint64_t bits, int lane_mask, int width) {
  Block& b = block();
  Fiber& f = b.fibers[b.current];
  const int lane = b.current % kWarpSize;
  if (width <= 0 || width > kWarpSize || (width & (width - 1)) != 0) {
    std::fprintf(stderr, "ctxpool CUDA emulator: __shfl_xor_sync width %d is not a power of 2 up to 32\n", width);
    std::abort();
  }
  // Width w splits the warp into groups of w lanes; a source beyond the end of the caller's group
  // gives the caller its own value (PTX's butterfly mode), one in an earlier group is read.
  const int group = lane / width * width;
  int src = lane ^ (lane_mask & (kWarpSize - 1));
  if (src >= group + width) src = lane;
  f.mask = mask;
  f.source_lane = src;
  f.value = bits;
  wait(State::AtShuffle);
  return f.result;
}

}  // namespace ctxpool_emu
