#include "cuda/cublas.h"

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/check.h"
#include "cuda/dynamic_library.h"

namespace ctxpool::cuda {

namespace {

std::atomic<bool> g_allow_tf32{false};

CublasApi load_cublas() {
  // The major version this code was compiled against (its ABI).
  std::string name;
  void* lib = open_cuda_library("libcublas.so." + std::to_string(CUBLAS_VER_MAJOR), "cuBLAS",
                                "install the CUDA toolkit's cuBLAS or put its directory on LD_LIBRARY_PATH", &name);
  const auto resolve = [&](const char* symbol, auto& out) { resolve_symbol(lib, symbol, "cuBLAS", name, out); };
  CublasApi api{};
  resolve("cublasCreate_v2", api.create);
  resolve("cublasSetStream_v2", api.set_stream);
  resolve("cublasSetMathMode", api.set_math_mode);
  resolve("cublasSgemmStridedBatched", api.sgemm_strided_batched);
  resolve("cublasDgemmStridedBatched", api.dgemm_strided_batched);
  resolve("cublasGetStatusName", api.status_name);
  resolve("cublasGetStatusString", api.status_string);
  return api;  // the library stays open for the life of the process
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load_cublas();
  return api;
}

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

cublasHandle_t cublas_handle(int device) {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;  // never destroyed (the runtime may be gone at exit)
  std::lock_guard<std::mutex> lock(mutex);
  if (handles.size() <= static_cast<size_t>(device)) handles.resize(device + 1, nullptr);
  const CublasApi& api = cublas();
  if (handles[device] == nullptr) {
    set_device(device);
    check_cublas(api.create(&handles[device]), "cublasCreate");
  }
  cublasHandle_t h = handles[device];
  check_cublas(api.set_stream(h, current_stream()), "cublasSetStream");
  check_cublas(api.set_math_mode(h, g_allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode");
  return h;
}

}  // namespace ctxpool::cuda
