// The CUDA emulator's runtime calls: one device whose memory is host memory. Streams are in order by
// construction (a launch runs to completion before it returns), so synchronisation is a no-op that
// only reports the error a launch recorded.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda_runtime.h"

namespace ctxpool_emu {

namespace {

cudaError_t g_last_error = cudaSuccess;
cudaError_t g_message_error = cudaSuccess;  // the code g_last_message explains
std::string g_last_message;
int g_device = 0;

constexpr size_t kTotalBytes = size_t(16) << 30;  // what the emulated device says it has
constexpr size_t kAlignment = 256;                // cudaMalloc's guarantee

cudaError_t fail(cudaError_t error, const std::string& message) {
  g_last_error = error;
  g_message_error = error;
  g_last_message = message;
  return error;
}

}  // namespace

void set_launch_error(cudaError_t error, const std::string& message) {
  fail(error, message);
  std::fprintf(stderr, "ctxpool CUDA emulator: %s\n", message.c_str());
}

}  // namespace ctxpool_emu

using ctxpool_emu::fail;

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = ctxpool_emu::g_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaSetDevice: the emulator has one device");
  ctxpool_emu::g_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: the emulator has one device");
  std::memset(prop, 0, sizeof(*prop));
  std::snprintf(prop->name, sizeof(prop->name), "ctxpool CUDA emulator");
  prop->totalGlobalMem = ctxpool_emu::kTotalBytes;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->multiProcessorCount = 4;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

// Fresh memory is filled with 0xff bytes (NaN in float and double, -1 in integers), so a kernel that
// reads what nothing wrote gives a visibly wrong result instead of a lucky zero.
cudaError_t cudaMalloc(void** ptr, size_t size) {
  *ptr = nullptr;
  if (size > ctxpool_emu::kTotalBytes) return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  // Exactly `size` bytes (posix_memalign, unlike aligned_alloc, needs no rounding): under ASan the
  // first byte past the end is already out of bounds.
  void* p = nullptr;
  if (posix_memalign(&p, ctxpool_emu::kAlignment, size == 0 ? 1 : size) != 0)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory");
  std::memset(p, 0xff, size);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = ctxpool_emu::kTotalBytes;
  *total_bytes = ctxpool_emu::kTotalBytes;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind) {
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, count, kind);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t) {
  if (count) std::memset(ptr, value, count);
  return cudaSuccess;
}

// A failed kernel (not a refused launch) is reported by the next synchronisation too, as on a GPU.
// Unlike a GPU's, the error is not sticky: the next call succeeds, so one test's fault does not fail
// the rest of its process.
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return ctxpool_emu::g_last_error == cudaErrorLaunchFailure ? ctxpool_emu::g_last_error : cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = ctxpool_emu::g_last_error;
  ctxpool_emu::g_last_error = cudaSuccess;
  return e;
}

// The message of the last failed call (more than the toolkit's fixed strings: which kernel, which
// block, why), else the code's name.
const char* cudaGetErrorString(cudaError_t error) {
  if (error != cudaSuccess && error == ctxpool_emu::g_message_error) return ctxpool_emu::g_last_message.c_str();
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
