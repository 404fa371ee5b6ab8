// The per-device kernel table (ops/kernels.h): the CPU backend fills every entry, each table is built
// once, and kernel() hands back the entry of the tensor's device.
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "helpers/test_utils.h"
#include "ops/kernels.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

// Kernels holds only function pointers, so it can be read as an array of them: an entry added later
// is covered here without being listed.
using AnyKernel = void (*)();
constexpr size_t kEntries = sizeof(Kernels) / sizeof(AnyKernel);
static_assert(sizeof(Kernels) % sizeof(AnyKernel) == 0, "Kernels should hold only function pointers");

std::vector<size_t> null_entries(const Kernels& table) {
  std::vector<size_t> missing;
  for (size_t i = 0; i < kEntries; ++i) {
    AnyKernel entry = nullptr;
    std::memcpy(&entry, reinterpret_cast<const char*>(&table) + i * sizeof(AnyKernel), sizeof(AnyKernel));
    if (entry == nullptr) missing.push_back(i);
  }
  return missing;
}

std::string positions(const std::vector<size_t>& v) {
  std::string s;
  for (size_t i : v) s += std::to_string(i) + " ";
  return s;
}

}  // namespace

TEST(KernelTable, CpuFillsEveryEntryButTheCudaFastPathsAndQueries) {
  EXPECT_GE(kEntries, 25u);  // every CPU kernel of today; more as kernels are added
  // The fused attention is a CUDA fast path; where it is null, attention runs its unfused kernels.
  // conv2d_supports is a query for devices whose convolution kernels refuse some shapes (cuDNN); null
  // means every shape, as on the CPU.
  const std::vector<size_t> fast_paths = {offsetof(Kernels, flash_attention_forward) / sizeof(AnyKernel),
                                          offsetof(Kernels, flash_attention_backward) / sizeof(AnyKernel),
                                          offsetof(Kernels, conv2d_supports) / sizeof(AnyKernel)};
  const std::vector<size_t> missing = null_entries(kernels(kCPU));
  EXPECT_EQ(missing, fast_paths) << "null CPU entries at positions (declaration order in ops/kernels.h): "
                                 << positions(missing);
}

TEST(KernelTable, BuiltOncePerDeviceType) {
  EXPECT_EQ(&kernels(kCPU), &kernels(kCPU));
  EXPECT_EQ(&kernels(cuda_device(0)), &kernels(cuda_device(1)));  // one table per device type
  EXPECT_NE(&kernels(kCPU), &kernels(cuda_device(0)));
}

TEST(KernelTable, KernelReturnsTheEntryForTheTensorsDevice) {
  const Tensor x = zeros({2, 3});
  EXPECT_TRUE(kernel(&Kernels::matmul, "matmul", x).function() == kernels(kCPU).matmul);
  EXPECT_TRUE(kernel(&Kernels::max_or_min_rows, "max", x).function() == kernels(kCPU).max_or_min_rows);
  // Through the table, the ops give the same values as ever.
  expect_values(ops::matmul(ones({2, 3}), ones({3, 1})), {3, 3});
  auto [values, indices] = ops::min(tensor({3.0, 1.0, 2.0, 1.0}), 0);
  expect_values(values, {1});
  EXPECT_EQ(indices.item<int64_t>(), 1);  // the first minimum
}
