// The x86 instruction-set extensions the start-up check knows (core/cpu_features.cpp), in one list:
// X(bit, name) with `name` as GCC's __builtin_cpu_supports spells it (the test compares the two). core/cpu_target.cpp records which of
// them the kernels were compiled to use. Internal to core.
#pragma once

#define CTXPOOL_CPU_FEATURES(X)                                                                            \
  X(0, "sse4.2") X(1, "popcnt") X(2, "avx") X(3, "avx2") X(4, "fma") X(5, "bmi") X(6, "bmi2") X(7, "lzcnt") \
  X(8, "movbe") X(9, "f16c") X(10, "avx512f") X(11, "avx512cd") X(12, "avx512bw") X(13, "avx512dq")        \
  X(14, "avx512vl") X(15, "avx512vnni") X(16, "avx512bf16") X(17, "avx512vbmi") X(18, "avx512vbmi2")       \
  X(19, "avx512ifma") X(20, "avx512bitalg") X(21, "avx512vpopcntdq") X(22, "avx512fp16") X(23, "gfni")     \
  X(24, "vaes") X(25, "vpclmulqdq") X(26, "avxvnni")

namespace ctxpool::detail {

// Bit i set: feature i of CTXPOOL_CPU_FEATURES is used by the compiled kernels.
extern const unsigned kCompiledCpuFeatures;

// Whether this CPU (and OS) supports feature `bit` of CTXPOOL_CPU_FEATURES, read with CPUID
// (core/cpu_features.cpp); true off x86.
bool cpu_has_feature(int bit);

}  // namespace ctxpool::detail
