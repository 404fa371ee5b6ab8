// The CUDA kernel table in a build without the CUDA toolkit: empty, so an op given a CUDA tensor
// says "not implemented on cuda:0 yet" (core refuses to make one in such a build anyway).
#include "ops/kernels.h"

namespace ctxpool::cuda {

void add_kernels(Kernels&) {}

}  // namespace ctxpool::cuda
