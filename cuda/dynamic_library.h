// Opening a CUDA toolkit library at first use (cuBLAS, NCCL): dlopen, then dlsym per entry point,
// each failure a ctxpool::Error naming the library, the symbol and dlerror(). The library stays open
// for the life of the process.
#pragma once
#include <dlfcn.h>

#include <string>

#include "core/error.h"

namespace ctxpool::cuda {

// "libX.so.<major>" from the loader's search path (LD_LIBRARY_PATH first), else from the toolkit
// the build found (CTXPOOL_CUDA_LIBRARY_DIR). *name gets the one opened; `what` names the library
// in errors ("cuBLAS"), `install` says how to get it.
inline void* open_cuda_library(const std::string& versioned, const char* what, const char* install, std::string* name) {
  *name = versioned;
  void* lib = dlopen(name->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib != nullptr) return lib;
  const std::string first_error = dlerror();
  *name = std::string(CTXPOOL_CUDA_LIBRARY_DIR) + "/" + versioned;
  lib = dlopen(name->c_str(), RTLD_NOW | RTLD_LOCAL);
  CTXPOOL_CHECK(lib != nullptr, what, " could not be loaded: ", first_error, "; nor from ", *name, " (", dlerror(),
                "): ", install);
  return lib;
}

// dlsym with the error that names the symbol and the library.
template <typename Fn>
void resolve_symbol(void* lib, const char* symbol, const char* what, const std::string& lib_name, Fn& out) {
  void* p = dlsym(lib, symbol);
  CTXPOOL_CHECK(p != nullptr, what, ": ", lib_name, " has no ", symbol, " (", dlerror(), ")");
  out = reinterpret_cast<Fn>(p);
}

}  // namespace ctxpool::cuda
