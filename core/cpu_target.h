// Bits of the instruction-set extensions the kernels were compiled for (set by core/cpu_target.cpp,
// read by core/cpu_features.cpp). Internal to core.
#pragma once

namespace ctxpool::detail {

enum CpuFeatureBit : unsigned {
  kCpuAvx = 1u << 0,
  kCpuAvx2 = 1u << 1,
  kCpuFma = 1u << 2,
  kCpuBmi2 = 1u << 3,
  kCpuAvx512f = 1u << 4,
  kCpuAvx512bw = 1u << 5,
  kCpuAvx512vl = 1u << 6,
  kCpuAvx512dq = 1u << 7,
};

extern const unsigned kCompiledCpuFeatures;

}  // namespace ctxpool::detail
