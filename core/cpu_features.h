// The x86 instruction-set extensions the kernels were compiled to use (CTXPOOL_ARCH in CMakeLists.txt)
// against what this CPU has. A binary built with AVX2 or AVX-512 and started on a CPU without them
// stops at start-up with a message saying so, instead of dying on an illegal instruction mid-run.
#pragma once
#include <string>

namespace ctxpool {

// Space-separated names ("avx2 fma"): what the kernels were compiled for, and the part of it this
// CPU lacks ("" when it has everything; always "" off x86).
std::string compiled_cpu_features();
std::string missing_cpu_features();

// The message for missing features (empty `missing`: ""), as printed at start-up.
std::string cpu_features_message(const std::string& compiled, const std::string& missing);

}  // namespace ctxpool
