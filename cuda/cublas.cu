#include "cuda/cublas.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/check.h"

namespace ctxpool::cuda {

namespace {

std::atomic<bool> g_allow_tf32{false};

// dlsym with the error that names the symbol and the library.
template <typename Fn>
void resolve(void* lib, const char* symbol, const std::string& lib_name, Fn& out) {
  void* p = dlsym(lib, symbol);
  CTXPOOL_CHECK(p != nullptr, "cuBLAS: ", lib_name, " has no ", symbol, " (", dlerror(), ")");
  out = reinterpret_cast<Fn>(p);
}

CublasApi load_cublas() {
  // The major version this code was compiled against (its ABI): from the loader's search path
  // (LD_LIBRARY_PATH first), else from the toolkit the build found.
  const std::string versioned = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  std::string name = versioned;
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const std::string first_error = dlerror();
    name = std::string(CTXPOOL_CUDA_LIBRARY_DIR) + "/" + versioned;
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    CTXPOOL_CHECK(lib != nullptr, "cuBLAS could not be loaded: ", first_error, "; nor from ", name, " (",
                  dlerror(), "): install the CUDA toolkit's cuBLAS or put its directory on LD_LIBRARY_PATH");
  }
  CublasApi api{};
  resolve(lib, "cublasCreate_v2", name, api.create);
  resolve(lib, "cublasSetStream_v2", name, api.set_stream);
  resolve(lib, "cublasSetMathMode", name, api.set_math_mode);
  resolve(lib, "cublasSgemmStridedBatched", name, api.sgemm_strided_batched);
  resolve(lib, "cublasDgemmStridedBatched", name, api.dgemm_strided_batched);
  resolve(lib, "cublasGetStatusName", name, api.status_name);
  resolve(lib, "cublasGetStatusString", name, api.status_string);
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
