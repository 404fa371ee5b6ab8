#include "cuda/nccl.h"

#include "cuda/dynamic_library.h"

#include <string>

namespace ctxpool::cuda {

namespace {

NcclApi load_nccl() {
  // The major version compiled against, from LD_LIBRARY_PATH first (NVIDIA's pip package puts it in
  // site-packages/nvidia/nccl/lib), else from the toolkit the build found.
  std::string name;
  void* lib = open_cuda_library("libnccl.so." + std::to_string(NCCL_MAJOR), "NCCL",
                                "install NCCL (libnccl2) or put its directory on LD_LIBRARY_PATH", &name);
  const auto resolve = [&](const char* symbol, auto& out) { resolve_symbol(lib, symbol, "NCCL", name, out); };
  NcclApi api{};
  resolve("ncclGetUniqueId", api.get_unique_id);
  resolve("ncclCommInitRank", api.comm_init_rank);
  resolve("ncclCommAbort", api.comm_abort);
  resolve("ncclCommGetAsyncError", api.comm_get_async_error);
  resolve("ncclReduce", api.reduce);
  resolve("ncclBroadcast", api.broadcast);
  resolve("ncclGetErrorString", api.error_string);
  return api;  // the library stays open for the life of the process
}

}  // namespace

const NcclApi& nccl() {
  static const NcclApi api = load_nccl();
  return api;
}

}  // namespace ctxpool::cuda
