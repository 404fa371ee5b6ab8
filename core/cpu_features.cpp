// Compiled for the baseline x86-64 whatever CTXPOOL_ARCH is (CMakeLists.txt), so that this check runs
// on the CPUs it has to turn away.
#include "core/cpu_features.h"

#include <cstdio>
#include <cstdlib>

#include "core/cpu_target.h"

namespace ctxpool {

namespace {

struct Feature {
  unsigned bit;
  const char* name;
};
constexpr Feature kFeatures[] = {{detail::kCpuAvx, "avx"},         {detail::kCpuAvx2, "avx2"},
                                 {detail::kCpuFma, "fma"},         {detail::kCpuBmi2, "bmi2"},
                                 {detail::kCpuAvx512f, "avx512f"}, {detail::kCpuAvx512bw, "avx512bw"},
                                 {detail::kCpuAvx512vl, "avx512vl"}, {detail::kCpuAvx512dq, "avx512dq"}};

bool cpu_has(unsigned bit) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // may run before libgcc's own initialisation (from the constructor below)
  switch (bit) {
    case detail::kCpuAvx: return __builtin_cpu_supports("avx");
    case detail::kCpuAvx2: return __builtin_cpu_supports("avx2");
    case detail::kCpuFma: return __builtin_cpu_supports("fma");
    case detail::kCpuBmi2: return __builtin_cpu_supports("bmi2");
    case detail::kCpuAvx512f: return __builtin_cpu_supports("avx512f");
    case detail::kCpuAvx512bw: return __builtin_cpu_supports("avx512bw");
    case detail::kCpuAvx512vl: return __builtin_cpu_supports("avx512vl");
    case detail::kCpuAvx512dq: return __builtin_cpu_supports("avx512dq");
  }
#endif
  (void)bit;
  return true;
}

std::string names(bool only_missing) {
  std::string out;
  for (const Feature& f : kFeatures) {
    if (!(detail::kCompiledCpuFeatures & f.bit) || (only_missing && cpu_has(f.bit))) continue;
    out += (out.empty() ? "" : " ");
    out += f.name;
  }
  return out;
}

// Runs before the other static constructors (priority 101), which may already use the extensions.
__attribute__((constructor(101))) void stop_on_a_cpu_without_the_compiled_features() {
  const std::string missing = missing_cpu_features();
  if (missing.empty()) return;
  std::fprintf(stderr, "%s\n", cpu_features_message(compiled_cpu_features(), missing).c_str());
  std::exit(1);
}

}  // namespace

std::string compiled_cpu_features() { return names(false); }
std::string missing_cpu_features() { return names(true); }

std::string cpu_features_message(const std::string& compiled, const std::string& missing) {
  if (missing.empty()) return "";
  return "ctxpool: this program was compiled for a CPU with " + compiled + ", but this CPU lacks " + missing +
         ". Rebuild it on this machine (cmake -DCTXPOOL_ARCH=native), or for any x86-64 (-DCTXPOOL_ARCH=default).";
}

}  // namespace ctxpool
