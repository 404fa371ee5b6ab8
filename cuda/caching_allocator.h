// The CUDA device allocator registered with core: one BlockCache per device over cudaMalloc/cudaFree,
// behind a mutex (cuda/caching_allocator.cu).
#pragma once
#include "core/allocator.h"

namespace ctxpool::cuda {

// The process-wide instance (never destroyed: freeing device memory after the CUDA runtime has shut
// down at exit would fail).
Allocator& caching_allocator();

}  // namespace ctxpool::cuda
