// Compiled with the kernels' flags (CTXPOOL_ARCH), so the compiler's predefined macros say what the
// kernels may use. Only constant data: nothing here executes, so it is safe on any CPU.
#include "core/cpu_target.h"

namespace ctxpool::detail {

extern const unsigned kCompiledCpuFeatures = 0u
#ifdef __AVX__
    | kCpuAvx
#endif
#ifdef __AVX2__
    | kCpuAvx2
#endif
#ifdef __FMA__
    | kCpuFma
#endif
#ifdef __BMI2__
    | kCpuBmi2
#endif
#ifdef __AVX512F__
    | kCpuAvx512f
#endif
#ifdef __AVX512BW__
    | kCpuAvx512bw
#endif
#ifdef __AVX512VL__
    | kCpuAvx512vl
#endif
#ifdef __AVX512DQ__
    | kCpuAvx512dq
#endif
    ;

}  // namespace ctxpool::detail
