// The CUDA runtime's entry points in a build without the toolkit.
#include "cuda/cuda_api.h"

namespace ctxpool::cuda {

bool built_with_cuda() { return false; }
int device_count() { return 0; }
std::string device_description(int) { return "no CUDA device (ctxpool was built without CUDA)"; }
void register_backend() {}

}  // namespace ctxpool::cuda
