// The kernel tables: each built once, on first use, by explicit calls to the backends' registrations.
#include "ops/kernels.h"

#include "core/cpu_features.h"
#include "core/error.h"

namespace ctxpool {

namespace {

Kernels cpu_table() {
  // (Also checked before main by core/cpu_features.cpp's constructor, which this reference links in.)
  const std::string missing = missing_cpu_features();
  CTXPOOL_CHECK(missing.empty(), cpu_features_message(compiled_cpu_features(), missing));
  Kernels k;
  cpu::add_elementwise_kernels(k);
  cpu::add_reduce_kernels(k);
  cpu::add_matmul_kernels(k);
  cpu::add_nn_kernels(k);
  cpu::add_local_attention_kernels(k);
  cpu::add_context_pool_kernels(k);
  cpu::add_context_pool2d_kernels(k);
  cpu::add_index_kernels(k);
  cpu::add_optim_kernels(k);
  cpu::add_conv2d_kernels(k);
  cpu::add_pool_kernels(k);
  cpu::add_batch_norm_kernels(k);
  return k;
}

Kernels cuda_table() {
  Kernels k;
  cuda::add_kernels(k);
  return k;
}

}  // namespace

const Kernels& kernels(Device device) {
  switch (device.type) {
    case DeviceType::CPU: {
      static const Kernels table = cpu_table();
      return table;
    }
    case DeviceType::CUDA: {
      static const Kernels table = cuda_table();
      return table;
    }
  }
  detail::fail("kernels: unknown device ", device);
}

GemmLayout gemm_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if ((col_stride == 1 || cols == 1) && row_stride >= std::max<int64_t>(cols, 1)) return {false, row_stride, true};
  if ((row_stride == 1 || rows == 1) && col_stride >= std::max<int64_t>(rows, 1)) return {true, col_stride, true};
  return {};
}

bool matmul_operand_ok(const Tensor& t) {
  const int64_t nd = t.dim();
  return gemm_layout(t.sizes()[nd - 2], t.sizes()[nd - 1], t.strides()[nd - 2], t.strides()[nd - 1]).ok;
}

void fail_not_implemented(const char* op, const Tensor& t) {
  detail::fail(op, ": not implemented on ", t.device(), " yet (tensor of shape ", t.sizes(),
               "); move it to the CPU with .cpu()");
}

}  // namespace ctxpool
