#include "cuda/cublas.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "cuda/check.h"

namespace ctxpool::cuda {

namespace {
std::atomic<bool> g_allow_tf32{false};
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

cublasHandle_t cublas_handle(int device) {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;  // never destroyed (the runtime may be gone at exit)
  std::lock_guard<std::mutex> lock(mutex);
  if (handles.size() <= static_cast<size_t>(device)) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) {
    set_device(device);
    check_cublas(cublasCreate(&handles[device]), "cublasCreate");
  }
  cublasHandle_t h = handles[device];
  check_cublas(cublasSetStream(h, current_stream()), "cublasSetStream");
  check_cublas(cublasSetMathMode(h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode");
  return h;
}

}  // namespace ctxpool::cuda
