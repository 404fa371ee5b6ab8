// The CUDA kernel table: what a build fills in, and the clear error an op gives for a CUDA tensor when
// the table has no kernel for it yet (the skip list of the parity test is that to-do list).
#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"
#include "ops/kernels.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(CudaKernelTable, MatchesTheBuild) {
  const Kernels& table = kernels(cuda_device());
  if (!cuda::built_with_cuda()) {
    EXPECT_TRUE(table.fill == nullptr);  // ops/cuda/none.cpp leaves the table empty
    EXPECT_TRUE(table.copy == nullptr);
    EXPECT_TRUE(table.matmul == nullptr);
    return;
  }
  EXPECT_TRUE(table.fill != nullptr);  // ops/cuda/elementwise.cu
  EXPECT_TRUE(table.copy != nullptr);
}

// Runs without a GPU in a CUDA build: a tensor of zero elements needs no device memory.
TEST(CudaKernelTable, MissingKernelNamesOpDeviceAndShape) {
  if (!cuda::built_with_cuda()) GTEST_SKIP() << "built without CUDA: no CUDA tensor can be made";
  Tensor d;
  try {
    d = empty({0, 3}, TensorOptions(kFloat32).device(cuda_device()));
  } catch (const Error& e) {
    GTEST_SKIP() << "cannot make an empty CUDA tensor here: " << e.what();
  }
  EXPECT_ERROR_WITH(ops::exp(d), "exp: not implemented on cuda:0 yet (tensor of shape [0, 3]); "
                                 "move it to the CPU with .cpu()");
  EXPECT_ERROR_WITH(ops::matmul(d, d.transpose(0, 1)), "matmul: not implemented on cuda:0 yet");
}

TEST(CudaKernelTable, OpsWithoutCudaKernelSaySo) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  const Device gpu = cuda_device();
  const Tensor x = ones({2, 4}).to(gpu), b = ones({2, 4}).to(gpu);
  const char* not_yet = "not implemented on cuda:0 yet";
  EXPECT_ERROR_WITH(ops::exp(x), "exp", not_yet);
  EXPECT_ERROR_WITH(ops::add(x, b), "add", not_yet);
  EXPECT_ERROR_WITH(ops::matmul(x, x.transpose(0, 1).contiguous()), "matmul", not_yet);
  EXPECT_ERROR_WITH(ops::sum(x), "sum", not_yet);
  EXPECT_ERROR_WITH(ops::max(x, 1), "max", not_yet);
  EXPECT_ERROR_WITH(ops::softmax(x, -1), "softmax", not_yet);
  EXPECT_ERROR_WITH(ops::layer_norm(x, {4}), "layer_norm", not_yet);
  EXPECT_ERROR_WITH(ops::cross_entropy(x, zeros({2}, kInt64).to(gpu)), "cross_entropy", not_yet);
  EXPECT_ERROR_WITH(ops::embedding(x, zeros({3}, kInt64).to(gpu)), "embedding", not_yet);
  EXPECT_ERROR_WITH(x.to(kFloat64), "to(dtype)", not_yet, "shape [2, 4]");
}

TEST(CudaKernelTable, FillAndCloneRunOnTheDevice) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  Tensor d = zeros({2, 3}).to(cuda_device());
  d.fill_(2.5);
  const Tensor c = d.clone();
  EXPECT_TRUE(c.is_cuda());
  d.fill_(1.0);  // the clone has its own memory
  expect_values(c.cpu(), std::vector<double>(6, 2.5));
  EXPECT_ERROR_WITH(d.transpose(0, 1).clone(), "copy", "cuda:0", "contiguous");
  EXPECT_ERROR_WITH(d.transpose(0, 1).fill_(0.0), "fill_", "non-contiguous", "cuda:0");
}
