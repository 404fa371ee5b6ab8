// The CUDA kernel table, in a build with the CUDA toolkit: one call per ops/cuda/<family>.cu.
// ops/kernels.cpp calls add_kernels once, the first time a CUDA tensor reaches an op.
#include "ops/kernels.h"

namespace ctxpool::cuda {

void add_kernels(Kernels& k) {
  add_elementwise_kernels(k);
  add_reduce_kernels(k);
  add_matmul_kernels(k);
  add_nn_kernels(k);
  add_local_attention_kernels(k);
  add_flash_attention_kernels(k);
  add_context_pool_kernels(k);
  add_context_pool2d_kernels(k);
  add_index_kernels(k);
  add_optim_kernels(k);
  add_conv2d_kernels(k);
  add_cudnn_conv2d_kernels(k);
  add_pool_kernels(k);
  add_batch_norm_kernels(k);
}

}  // namespace ctxpool::cuda
