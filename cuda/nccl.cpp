#include "cuda/nccl.h"

#include <dlfcn.h>

#include <string>

namespace ctxpool::cuda {

namespace {

template <typename Fn>
void resolve(void* lib, const char* symbol, const std::string& lib_name, Fn& out) {
  void* p = dlsym(lib, symbol);
  CTXPOOL_CHECK(p != nullptr, "NCCL: ", lib_name, " has no ", symbol, " (", dlerror(), ")");
  out = reinterpret_cast<Fn>(p);
}

NcclApi load_nccl() {
  // The major version compiled against, from the loader's search path (LD_LIBRARY_PATH first: NVIDIA's
  // pip package puts it in site-packages/nvidia/nccl/lib), else from the toolkit the build found.
  const std::string versioned = "libnccl.so." + std::to_string(NCCL_MAJOR);
  std::string name = versioned;
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const std::string first_error = dlerror();
    name = std::string(CTXPOOL_CUDA_LIBRARY_DIR) + "/" + versioned;
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    CTXPOOL_CHECK(lib != nullptr, "NCCL could not be loaded: ", first_error, "; nor from ", name, " (", dlerror(),
                  "): install NCCL (libnccl2) or put its directory on LD_LIBRARY_PATH");
  }
  NcclApi api{};
  resolve(lib, "ncclGetUniqueId", name, api.get_unique_id);
  resolve(lib, "ncclCommInitRank", name, api.comm_init_rank);
  resolve(lib, "ncclCommAbort", name, api.comm_abort);
  resolve(lib, "ncclCommGetAsyncError", name, api.comm_get_async_error);
  resolve(lib, "ncclReduce", name, api.reduce);
  resolve(lib, "ncclBroadcast", name, api.broadcast);
  resolve(lib, "ncclGetErrorString", name, api.error_string);
  return api;  // the library stays open for the life of the process
}

}  // namespace

const NcclApi& nccl() {
  static const NcclApi api = load_nccl();
  return api;
}

}  // namespace ctxpool::cuda
