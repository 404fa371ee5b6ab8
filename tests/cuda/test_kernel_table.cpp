// The CUDA kernel table: what a build fills in, and the clear error an op gives for a CUDA tensor when
// the table has no kernel for it yet (the skip list of the parity test is that to-do list).
#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"
#include "ops/kernels.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(CudaKernelTable, MatchesTheBuild) {
  const Kernels& table = kernels(cuda_device());
  // Every entry of the table, so a kernel added to the CPU table but not to the CUDA one shows here.
  const std::vector<std::pair<const char*, bool>> entries = {
      {"unary", table.unary != nullptr}, {"binary", table.binary != nullptr}, {"where", table.where != nullptr},
      {"clamp", table.clamp != nullptr}, {"copy", table.copy != nullptr}, {"fill", table.fill != nullptr},
      {"uniform", table.uniform != nullptr},
      {"sum_rows", table.sum_rows != nullptr}, {"sum_middle", table.sum_middle != nullptr},
      {"max_or_min_rows", table.max_or_min_rows != nullptr}, {"matmul", table.matmul != nullptr},
      {"softmax_rows", table.softmax_rows != nullptr}, {"layer_norm_rows", table.layer_norm_rows != nullptr},
      {"layer_norm_backward_rows", table.layer_norm_backward_rows != nullptr},
      {"attention_softmax_rows", table.attention_softmax_rows != nullptr},
      {"softmax_backward_rows", table.softmax_backward_rows != nullptr},
      {"cross_entropy_rows", table.cross_entropy_rows != nullptr},
      {"cross_entropy_backward_rows", table.cross_entropy_backward_rows != nullptr},
      {"batch_norm_stats", table.batch_norm_stats != nullptr},
      {"batch_norm_grad_sums", table.batch_norm_grad_sums != nullptr},
      {"channel_affine", table.channel_affine != nullptr},
      {"flash_attention_forward", table.flash_attention_forward != nullptr},
      {"flash_attention_backward", table.flash_attention_backward != nullptr},
      {"local_attention_forward", table.local_attention_forward != nullptr},
      {"local_attention_backward", table.local_attention_backward != nullptr},
      {"context_pool1d_forward", table.context_pool1d_forward != nullptr},
      {"context_pool1d_backward", table.context_pool1d_backward != nullptr},
      {"adamw_update", table.adamw_update != nullptr}, {"sgd_update", table.sgd_update != nullptr},
      {"embedding", table.embedding != nullptr}, {"embedding_backward", table.embedding_backward != nullptr},
      {"gather", table.gather != nullptr}, {"scatter_add_", table.scatter_add_ != nullptr},
      {"max_pool2d_forward", table.max_pool2d_forward != nullptr},
      {"max_pool2d_backward", table.max_pool2d_backward != nullptr},
      {"avg_pool2d_forward", table.avg_pool2d_forward != nullptr},
      {"avg_pool2d_backward", table.avg_pool2d_backward != nullptr},
      {"adaptive_avg_pool2d_forward", table.adaptive_avg_pool2d_forward != nullptr},
      {"adaptive_avg_pool2d_backward", table.adaptive_avg_pool2d_backward != nullptr},
      {"im2col2d", table.im2col2d != nullptr}, {"col2im2d", table.col2im2d != nullptr},
      {"context_pool2d_forward", table.context_pool2d_forward != nullptr},
      {"context_pool2d_backward", table.context_pool2d_backward != nullptr}};
  for (const auto& [name, present] : entries)
    EXPECT_EQ(present, cuda::built_with_cuda()) << name << (cuda::built_with_cuda() ? " has no CUDA kernel"
                                                                                     : " is set in a CPU-only build");
  // cuDNN's convolutions: in CUDA builds that found cudnn.h.
  const std::vector<std::pair<const char*, bool>> library = {{"conv2d_forward", table.conv2d_forward != nullptr},
                                                             {"conv2d_backward", table.conv2d_backward != nullptr},
                                                             {"conv2d_supports", table.conv2d_supports != nullptr}};
  for (const auto& [name, present] : library) EXPECT_EQ(present, cuda::built_with_cudnn()) << name;
  EXPECT_EQ(sizeof(Kernels), (entries.size() + library.size()) * sizeof(void (*)()))
      << "a new entry is missing from these lists";
}

// The error an op gives for a device whose table has no kernel for it (what every op said on CUDA
// before the CUDA kernels existed, and what a new op says until it gets one).
TEST(CudaKernelTable, MissingKernelNamesOpDeviceAndShape) {
  if (!cuda::built_with_cuda()) GTEST_SKIP() << "built without CUDA: no CUDA tensor can be made";
  Tensor d;
  try {
    d = empty({0, 3}, TensorOptions(kFloat32).device(cuda_device()));
  } catch (const Error& e) {
    GTEST_SKIP() << "cannot make an empty CUDA tensor here: " << e.what();
  }
  EXPECT_ERROR_WITH(fail_not_implemented("exp", d), "exp: not implemented on cuda:0 yet (tensor of shape [0, 3]); "
                                                    "move it to the CPU with .cpu()");
}

TEST(CudaKernelTable, FillAndCloneRunOnTheDevice) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  Tensor d = zeros({2, 3}).to(cuda_device());
  d.fill_(2.5);
  const Tensor c = d.clone();
  EXPECT_TRUE(c.is_cuda());
  d.fill_(1.0);  // the clone has its own memory
  expect_values(c.cpu(), std::vector<double>(6, 2.5));
  // Views: a transposed clone and a strided fill.
  Tensor e = arange(6, kFloat32).reshape({2, 3}).to(cuda_device());
  expect_values(e.transpose(0, 1).clone().cpu(), {0, 3, 1, 4, 2, 5});
  e.transpose(0, 1).slice(0, 0, 3, 2).fill_(-1.0);
  expect_values(e.cpu(), {-1, 1, -1, -1, 4, -1});
}
