// Compiled for the baseline x86-64 whatever CTXPOOL_ARCH is (CMakeLists.txt), so that this check runs
// on the CPUs it has to turn away.
#include "core/cpu_features.h"

#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/cpu_target.h"

namespace ctxpool {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// Where CPUID reports feature `bit` of CTXPOOL_CPU_FEATURES (Intel SDM vol. 2A, CPUID; AMD APM vol. 3),
// in the same order, and which register state the OS must save for it (XCR0: AVX needs SSE and AVX
// state, AVX-512 also the opmask and upper-ZMM state). Read directly rather than through
// __builtin_cpu_supports, whose feature names differ between GCC and clang versions.
enum Reg { kEax, kEbx, kEcx, kEdx };
enum OsState { kNone = 0, kAvxState = 0x6, kAvx512State = 0xe6 };
struct CpuidBit {
  unsigned leaf, subleaf;
  Reg reg;
  int bit;
  OsState os;
};
constexpr CpuidBit kCpuidBits[] = {
    {1, 0, kEcx, 20, kNone},         {1, 0, kEcx, 23, kNone},          {1, 0, kEcx, 28, kAvxState},
    {7, 0, kEbx, 5, kAvxState},      {1, 0, kEcx, 12, kAvxState},      {7, 0, kEbx, 3, kNone},
    {7, 0, kEbx, 8, kNone},          {0x80000001, 0, kEcx, 5, kNone},  {1, 0, kEcx, 22, kNone},
    {1, 0, kEcx, 29, kAvxState},     {7, 0, kEbx, 16, kAvx512State},   {7, 0, kEbx, 28, kAvx512State},
    {7, 0, kEbx, 30, kAvx512State},  {7, 0, kEbx, 17, kAvx512State},   {7, 0, kEbx, 31, kAvx512State},
    {7, 0, kEcx, 11, kAvx512State},  {7, 1, kEax, 5, kAvx512State},    {7, 0, kEcx, 1, kAvx512State},
    {7, 0, kEcx, 6, kAvx512State},   {7, 0, kEbx, 21, kAvx512State},   {7, 0, kEcx, 12, kAvx512State},
    {7, 0, kEcx, 14, kAvx512State},  {7, 0, kEdx, 23, kAvx512State},   {7, 0, kEcx, 8, kNone},
    {7, 0, kEcx, 9, kAvxState},      {7, 0, kEcx, 10, kAvxState},      {7, 1, kEax, 4, kAvxState},
};
#define CTXPOOL_CPU_COUNT(i, name) +1
static_assert(sizeof(kCpuidBits) / sizeof(kCpuidBits[0]) == 0 CTXPOOL_CPU_FEATURES(CTXPOOL_CPU_COUNT),
              "one CPUID location per entry of CTXPOOL_CPU_FEATURES");
#undef CTXPOOL_CPU_COUNT

bool cpuid(unsigned leaf, unsigned subleaf, unsigned regs[4]) {
  if (__get_cpuid_max(leaf & 0x80000000u, nullptr) < leaf) return false;
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
  return true;
}

// The register state the OS saves on a context switch (XCR0), or 0 without OSXSAVE.
unsigned os_saved_state() {
  unsigned regs[4];
  if (!cpuid(1, 0, regs) || !(regs[kEcx] & (1u << 27))) return 0;
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
#endif

}  // namespace

namespace detail {
bool cpu_has_feature(int bit) {
#if defined(__x86_64__) || defined(__i386__)
  if (bit < 0 || bit >= static_cast<int>(sizeof(kCpuidBits) / sizeof(kCpuidBits[0]))) return false;
  const CpuidBit& f = kCpuidBits[bit];
  unsigned regs[4];
  if (!cpuid(f.leaf, f.subleaf, regs) || !(regs[f.reg] & (1u << f.bit))) return false;
  return (os_saved_state() & f.os) == static_cast<unsigned>(f.os);
#else
  (void)bit;
  return true;
#endif
}
}  // namespace detail

namespace {

bool cpu_has(int bit) { return detail::cpu_has_feature(bit); }

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
