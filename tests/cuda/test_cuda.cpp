// CUDA tests: skipped cleanly when no device is present (CI and most development machines).
#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Cuda, DeviceQueryNeverThrows) {
  const int n = ops::cuda_device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(ops::cuda_is_available(), n > 0);
  EXPECT_FALSE(cuda::device_description(0).empty());
  EXPECT_EQ(cuda::compute_capability(n), 0) << "one past the last device";
  EXPECT_EQ(cuda::compute_capability(-1), 0);
  if (n > 0) {  // the description and the number agree: "(sm_90, ..." and 90
    const int cc = cuda::compute_capability(0);
    EXPECT_GE(cc, 50);
    EXPECT_NE(cuda::device_description(0).find("sm_" + std::to_string(cc)), std::string::npos);
  }
  if (!cuda::built_with_cuda()) {
    EXPECT_EQ(n, 0);
    EXPECT_ERROR_WITH(zeros({2}, cuda_device()), "cuda", "without CUDA");
  }
}

TEST(Cuda, RoundTripAndFill) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  Tensor h = arange(10, kFloat32);
  Tensor d = h.to(cuda_device());
  EXPECT_TRUE(d.is_cuda());
  expect_values(d.cpu(), h.to_vector<double>());
  d.fill_(3.0);
  expect_values(d.cpu(), std::vector<double>(10, 3.0));
  expect_values(zeros({4}, TensorOptions(kFloat64).device(cuda_device())).cpu(), {0, 0, 0, 0});
  manual_seed(1);
  const auto cpu_values = randn({8}).to_vector<float>();
  manual_seed(1);
  EXPECT_EQ(randn({8}, cuda_device()).to_vector<float>(), cpu_values);  // same stream on both
}

TEST(Cuda, GradientFlowsThroughDeviceCopies) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  Tensor x = param({3});
  Tensor y = x.to(cuda_device()).cpu();
  (y * 2.0).sum().backward();
  expect_values(x.grad(), {2, 2, 2});
}

#ifdef CTXPOOL_WITH_CUDA
#include <fstream>

#include "cuda/cublas.h"

// cuBLAS is opened on first use, not linked (cuda/cublas.h): a CPU-only run never loads it, and the
// first use resolves every entry point. Needs the library, not a GPU.
TEST(Cublas, LoadedOnFirstUseOnly) {
  const auto cublas_mapped = [] {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
      if (line.find("libcublas") != std::string::npos) return true;
    return false;
  };
  if (!cublas_mapped()) {  // (an earlier test in this process may have loaded it)
    const Tensor a = ones({2, 2});
    (void)ops::matmul(a, a);  // CPU work does not load it
    EXPECT_FALSE(cublas_mapped());
  }
  const cuda::CublasApi& api = cuda::cublas();
  EXPECT_TRUE(cublas_mapped());
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.sgemm_strided_batched, nullptr);
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS");
}
#endif

// Second derivatives through the CUDA fast paths (cuDNN's conv2d, the fused attention), whose
// create_graph backward is written with ops: the gradient of a gradient, against the CPU's.
TEST(CudaFastPaths, DoubleBackwardMatchesTheCpu) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  manual_seed(5);
  const Tensor x = randn({2, 3, 6, 6}, kFloat64), w = randn({4, 3, 3, 3}, kFloat64);
  const Tensor q = randn({2, 9, 8}, kFloat64), k = randn({2, 9, 8}, kFloat64), v = randn({2, 9, 4}, kFloat64);
  auto second = [&](Device device) {
    std::vector<Tensor> in;
    // Fresh leaves: t.to(kCPU) is t itself, so without clone() the CPU pass would make x, w, ... require
    // grad, and the CUDA pass's t.to(cuda) would then be a non-leaf whose .grad() stays empty.
    for (const Tensor& t : {x, w, q, k, v}) in.push_back(t.to(device).clone().requires_grad_(true));
    const Tensor y = ops::conv2d(in[0], in[1], Tensor(), {1, 1}, {1, 1});
    const Tensor a = ops::scaled_dot_product_attention(in[2], in[3], in[4], true);
    const Tensor loss = ops::add(ops::sum(ops::mul(y, y)), ops::sum(ops::mul(a, a)));
    const std::vector<Tensor> g = autograd::grad({loss}, in, {}, false, true);
    Tensor total = ops::sum(ops::mul(g[0], g[0]));
    for (size_t i = 1; i < g.size(); ++i) total = ops::add(total, ops::sum(ops::mul(g[i], g[i])));
    total.backward();
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.grad().cpu());
    return out;
  };
  const std::vector<Tensor> cpu = second(kCPU), gpu = second(cuda_device());
  for (size_t i = 0; i < cpu.size(); ++i) expect_values(gpu[i], cpu[i].to_vector<double>(), 1e-9);
}
