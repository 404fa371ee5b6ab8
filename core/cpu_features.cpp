// Compiled for the baseline x86-64 whatever CTXPOOL_ARCH is (CMakeLists.txt), so that this check runs
// on the CPUs it has to turn away.
#include "core/cpu_features.h"

#include <cstdio>
#include <cstdlib>

#include "core/cpu_target.h"

namespace ctxpool {

namespace {

// Whether this CPU has feature `bit` of CTXPOOL_CPU_FEATURES.
bool cpu_has(int bit) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // may run before libgcc's own initialisation (from the constructor below)
  switch (bit) {
#define CTXPOOL_CPU_CASE(i, name) \
  case i: return __builtin_cpu_supports(name);
    CTXPOOL_CPU_FEATURES(CTXPOOL_CPU_CASE)
#undef CTXPOOL_CPU_CASE
  }
#endif
  (void)bit;
  return true;
}

std::string names(bool only_missing) {
  std::string out;
  const auto add = [&](int bit, const char* name) {
    if (!(detail::kCompiledCpuFeatures & (1u << bit)) || (only_missing && cpu_has(bit))) return;
    out += (out.empty() ? "" : " ");
    out += name;
  };
#define CTXPOOL_CPU_ADD(i, name) add(i, name);
  CTXPOOL_CPU_FEATURES(CTXPOOL_CPU_ADD)
#undef CTXPOOL_CPU_ADD
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
