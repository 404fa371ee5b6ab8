// The start-up check of the CPU against what the kernels were compiled for (core/cpu_features.h).
#include <gtest/gtest.h>

#include "core/cpu_features.h"
#include "core/cpu_target.h"

using namespace ctxpool;

TEST(CpuFeatures, ThisCpuHasWhatTheKernelsWereCompiledFor) {
  // We are running, so the start-up check passed: nothing may be missing.
  EXPECT_EQ(missing_cpu_features(), "") << "compiled for: " << compiled_cpu_features();
  EXPECT_EQ(cpu_features_message(compiled_cpu_features(), ""), "");
}

TEST(CpuFeatures, MessageNamesWhatIsMissingAndHowToRebuild) {
  const std::string m = cpu_features_message("avx avx2 fma bmi2", "avx2 fma");
  EXPECT_NE(m.find("compiled for a CPU with avx avx2 fma bmi2"), std::string::npos) << m;
  EXPECT_NE(m.find("lacks avx2 fma"), std::string::npos) << m;
  EXPECT_NE(m.find("-DCTXPOOL_ARCH=native"), std::string::npos) << m;
  EXPECT_NE(m.find("-DCTXPOOL_ARCH=default"), std::string::npos) << m;
}

// The default build (CTXPOOL_ARCH=x86-64-v3) uses AVX2 and FMA, never AVX-512, whatever machine
// builds it: a binary made on an AVX-512 machine must run on an AVX2-only one.
TEST(CpuFeatures, DefaultBuildTargetsAvx2AndNoMore) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "not an x86-64 build";
#endif
  const std::string arch = CTXPOOL_ARCH_FOR_TESTS;
  if (arch != "x86-64-v3") GTEST_SKIP() << "built with CTXPOOL_ARCH=" << arch;
  EXPECT_EQ(compiled_cpu_features(), "sse4.2 popcnt avx avx2 fma bmi bmi2 lzcnt movbe f16c");
}

// Our CPUID table agrees with GCC's own detection for every feature, on whatever CPU runs the test
// (the two must not disagree on a machine that has, or lacks, AVX-512).
TEST(CpuFeatures, CpuidAgreesWithTheCompilersDetection) {
#if !defined(__x86_64__) || defined(__clang__)
  GTEST_SKIP() << "needs GCC's __builtin_cpu_supports names on x86-64";
#else
  __builtin_cpu_init();
#define CTXPOOL_CPU_COMPARE(i, name) \
  EXPECT_EQ(detail::cpu_has_feature(i), __builtin_cpu_supports(name) != 0) << name;
  CTXPOOL_CPU_FEATURES(CTXPOOL_CPU_COMPARE)
#undef CTXPOOL_CPU_COMPARE
#endif
}
