// A CUDA build without cuDNN (CMake found no cudnn.h): the convolution entries stay empty, so conv2d
// runs as im2col + cuBLAS on the GPU (ops/conv2d.cpp).
#include "cuda/cuda_api.h"
#include "ops/kernels.h"

namespace ctxpool::cuda {

bool built_with_cudnn() { return false; }

void add_cudnn_conv2d_kernels(Kernels&) {}

}  // namespace ctxpool::cuda
