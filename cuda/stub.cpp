// The CUDA runtime's entry points in a build without the toolkit.
#include "core/allocator.h"
#include "core/error.h"
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

bool built_with_cuda() { return false; }
bool built_with_cudnn() { return false; }
int device_count() { return 0; }
std::string device_description(int) { return "no CUDA device (ctxpool was built without CUDA)"; }
int compute_capability(int) { return 0; }

MemoryStats memory_stats(int) {
  detail::fail("cuda::memory_stats: ctxpool was built without CUDA (configure with the CUDA toolkit installed)");
}
void reset_peak_memory_stats(int) {
  detail::fail("cuda::reset_peak_memory_stats: ctxpool was built without CUDA");
}
void empty_cache() {}
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }

}  // namespace ctxpool::cuda

namespace ctxpool {
void register_cuda_allocator() {}  // allocator_for(CUDA) then says the build has no CUDA
}  // namespace ctxpool
