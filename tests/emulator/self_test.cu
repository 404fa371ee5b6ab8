// The CUDA emulator's own tests (tests/emulator/README.md): it runs every thread with its indices,
// shuffles as a GPU does, exposes a missing barrier, reports a deadlock or an undefined warp call
// instead of hanging, refuses a bad launch, and its cuBLAS computes (and rounds to TF32) as documented.
// Compiled only in the emulator build (translated like the library's .cu files).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cublas.h"

namespace {

using ctxpool_emu::Order;

// A device buffer (host memory under the emulator) and a copy of it back.
template <typename T>
struct Buffer {
  T* ptr = nullptr;
  size_t n;
  explicit Buffer(size_t count, const std::vector<T>& init = {}) : n(count) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)), cudaSuccess);
    if (!init.empty()) cudaMemcpy(ptr, init.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Buffer() { cudaFree(ptr); }
  std::vector<T> host() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

// The last launch's error and its message, cleared.
std::string last_error_message(cudaError_t expected) {
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, expected);
  return cudaGetErrorString(e);
}

class Emulator : public ::testing::TestWithParam<Order> {
 protected:
  void SetUp() override { ctxpool_emu::set_order(GetParam()); }
  void TearDown() override { ctxpool_emu::set_order(Order::Forward); }
};

__global__ void index_kernel(int* out) {
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned b = blockIdx.x + gridDim.x * blockIdx.y;
  out[b * blockDim.x * blockDim.y * blockDim.z + t] += 1000 * b + t + 1;  // memset 0 first: each slot once
}

TEST_P(Emulator, EveryThreadOfEveryBlockRunsOnceWithItsIndices) {
  const int threads = 8 * 4 * 2, blocks = 3 * 2;
  Buffer<int> out(threads * blocks);
  cudaMemsetAsync(out.ptr, 0, threads * blocks * sizeof(int));
  index_kernel<<<dim3(3, 2), dim3(8, 4, 2)>>>(out.ptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> v = out.host();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) EXPECT_EQ(v[b * threads + t], 1000 * b + t + 1) << "block " << b << " thread " << t;
}

template <typename T>
__global__ void xor_kernel(T* out, int lane_mask) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<T>(threadIdx.x) * T(10), lane_mask);
}

TEST_P(Emulator, XorShuffleReadsThePartnerLane) {
  Buffer<int> out(64);
  xor_kernel<int><<<1, 64>>>(out.ptr, 5);
  Buffer<double> out_d(64);
  xor_kernel<double><<<1, 64>>>(out_d.ptr, 16);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> v = out.host();
  const std::vector<double> d = out_d.host();
  for (int t = 0; t < 64; ++t) {
    EXPECT_EQ(v[t], (t ^ 5) * 10) << t;
    EXPECT_EQ(d[t], (t ^ 16) * 10.0) << t;
  }
}

__global__ void narrow_xor_kernel(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 16, 16);
}

// With width 16, lanes 16-31 read from the earlier group; lanes 0-15 would read from a later one
// and get their own value (the CUDA programming guide's rule for __shfl_xor_sync).
TEST_P(Emulator, NarrowShuffleReadsEarlierGroupsOnly) {
  Buffer<int> out(32);
  narrow_xor_kernel<<<1, 32>>>(out.ptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> v = out.host();
  for (int t = 0; t < 32; ++t) EXPECT_EQ(v[t], t < 16 ? t : t - 16) << t;
}

// Two halves of a warp synchronise apart, with disjoint masks: no deadlock.
__global__ void half_warp_sync_kernel(int* out) {
  const unsigned lane = threadIdx.x % 32;
  __syncwarp(lane < 16 ? 0x0000ffffu : 0xffff0000u);
  out[threadIdx.x] = 1;
}

TEST_P(Emulator, DisjointSyncwarpMasksGoOnApart) {
  Buffer<int> out(64);
  half_warp_sync_kernel<<<1, 64>>>(out.ptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (int v : out.host()) EXPECT_EQ(v, 1);
}

// A launch's arguments are evaluated once, on the host, like nvcc's.
__global__ void store_kernel(int* out, int value) { out[threadIdx.x] = value; }

TEST(EmulatorLaunch, ArgumentsAreEvaluatedOnce) {
  Buffer<int> out(64);
  int evaluations = 0;
  store_kernel<<<1, 64>>>(out.ptr, ++evaluations);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(evaluations, 1);
  for (int v : out.host()) EXPECT_EQ(v, 1);
}

void host_only_call() { throw std::runtime_error("not on a device"); }
__global__ void throwing_kernel() {
  if (threadIdx.x == 3) host_only_call();
}

TEST(EmulatorLaunch, AThreadThatThrowsFailsTheLaunch) {
  throwing_kernel<<<1, 32>>>();
  const std::string msg = last_error_message(cudaErrorLaunchFailure);
  EXPECT_NE(msg.find("a thread threw: not on a device"), std::string::npos) << msg;
}

// A block-wide tree sum in shared memory, with or without the barriers between writes and reads.
template <bool kBarriers>
__global__ void tree_sum_kernel(const int* in, int* out) {
  __shared__ int s[128];
  s[threadIdx.x] = in[threadIdx.x];
  if (kBarriers) __syncthreads();
  for (int half = 64; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) s[threadIdx.x] += s[threadIdx.x + half];
    if (kBarriers) __syncthreads();
  }
  if (threadIdx.x == 0) *out = s[0];
}

TEST_P(Emulator, BarriersMakeASharedMemoryReductionRight) {
  std::vector<int> in(128);
  for (int i = 0; i < 128; ++i) in[i] = i + 1;
  Buffer<int> x(128, in), out(1);
  tree_sum_kernel<true><<<1, 128>>>(x.ptr, out.ptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(out.host()[0], 128 * 129 / 2);
}

// Without barriers, thread 0 reads s[64] before thread 64 writes it when threads run in index order:
// the race a GPU may or may not show, the emulator shows in one of its two orders.
TEST(EmulatorOrder, AMissingBarrierGivesAWrongResultInOneOrder) {
  std::vector<int> in(128);
  for (int i = 0; i < 128; ++i) in[i] = i + 1;
  Buffer<int> x(128, in), out(1);
  int results[2];
  for (Order order : {Order::Forward, Order::Reverse}) {
    ctxpool_emu::set_order(order);
    tree_sum_kernel<false><<<1, 128>>>(x.ptr, out.ptr);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    results[static_cast<int>(order)] = out.host()[0];
  }
  ctxpool_emu::set_order(Order::Forward);
  EXPECT_NE(results[0], results[1]);
  EXPECT_TRUE(results[0] != 128 * 129 / 2 || results[1] != 128 * 129 / 2);
}

__global__ void divergent_barrier_kernel() {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncwarp();
  }
}

TEST_P(Emulator, ABarrierNotEveryThreadReachesIsADeadlockNotAHang) {
  divergent_barrier_kernel<<<2, 64>>>();
  const std::string msg = last_error_message(cudaErrorLaunchFailure);
  EXPECT_NE(msg.find("divergent_barrier_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
  // Warp 1 passes its __syncwarp and returns; warp 0 is split between the two barriers.
  EXPECT_NE(msg.find("16 at __syncthreads, 16 at __syncwarp, 0 at a shuffle, 32 returned"), std::string::npos) << msg;
  // The emulator goes on: the next launch runs.
  Buffer<int> out(64);
  xor_kernel<int><<<1, 64>>>(out.ptr, 1);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

__global__ void shuffle_after_return_kernel(int* out) {
  if (threadIdx.x % 2) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 2);
}

TEST_P(Emulator, AShuffleWhoseMaskNamesAReturnedLaneIsAnError) {
  Buffer<int> out(32);
  shuffle_after_return_kernel<<<1, 32>>>(out.ptr);
  const std::string msg = last_error_message(cudaErrorLaunchFailure);
  EXPECT_NE(msg.find("__shfl_xor_sync with mask 0xffffffff involves lane 1"), std::string::npos) << msg;
}

TEST(EmulatorLaunch, ABadConfigurationIsRefusedWithoutRunning) {
  Buffer<int> out(4096);
  index_kernel<<<1, 2048>>>(out.ptr);
  EXPECT_NE(last_error_message(cudaErrorInvalidConfiguration).find("index_kernel<<<(1, 1, 1), (2048, 1, 1), 0>>>"),
            std::string::npos);
  index_kernel<<<0, 32>>>(out.ptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  index_kernel<<<1, 32, 64 * 1024>>>(out.ptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
}

TEST(EmulatorMemory, FreshDeviceMemoryIsNaNNotZero) {
  Buffer<float> x(8);
  for (float v : x.host()) EXPECT_TRUE(std::isnan(v));
}

// The emulator's cuBLAS through ctxpool's own loader (the dlopen path a GPU run takes).
TEST(EmulatorCublas, GemmIsColumnMajorAndTf32RoundsTheInputs) {
  using namespace ctxpool::cuda;
  const CublasApi& api = cublas();
  cublasHandle_t h = nullptr;
  ASSERT_EQ(api.create(&h), CUBLAS_STATUS_SUCCESS);
  // A (2x3, column-major) times B (3x2): C = A B.
  const float eps = std::ldexp(1.0f, -12);  // below TF32's 10 mantissa bits
  Buffer<float> a(6, {1 + eps, 2, 3, 4, 5, 6}), b(6, {1, 0, 0, 0, 1, 0}), c(4);
  const float one = 1, zero = 0;
  ASSERT_EQ(api.set_math_mode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(api.sgemm_strided_batched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a.ptr, 2, 0, b.ptr, 3, 0, &zero, c.ptr,
                                      2, 0, 1),
            CUBLAS_STATUS_SUCCESS);
  // B's columns are e1 and e2, so C holds A's first two columns.
  std::vector<float> v = c.host();
  EXPECT_EQ(v[0], 1 + eps);
  EXPECT_EQ(v[1], 2.0f);
  EXPECT_EQ(v[2], 3.0f);
  EXPECT_EQ(v[3], 4.0f);
  ASSERT_EQ(api.set_math_mode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(api.sgemm_strided_batched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a.ptr, 2, 0, b.ptr, 3, 0, &zero, c.ptr,
                                      2, 0, 1),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c.host()[0], 1.0f);  // 1 + 2^-12 rounds to 1 in TF32
  // A leading dimension below A's row count is refused, as cuBLAS does.
  ASSERT_EQ(api.sgemm_strided_batched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a.ptr, 1, 0, b.ptr, 3, 0, &zero, c.ptr,
                                      2, 0, 1),
            CUBLAS_STATUS_INVALID_VALUE);
  api.set_math_mode(h, CUBLAS_DEFAULT_MATH);
}

INSTANTIATE_TEST_SUITE_P(Order, Emulator, ::testing::Values(Order::Forward, Order::Reverse),
                         [](const ::testing::TestParamInfo<Order>& info) {
                           return info.param == Order::Forward ? std::string("Forward") : std::string("Reverse");
                         });

}  // namespace
