// Compiled with the kernels' flags (CTXPOOL_ARCH), so the compiler's predefined macros say what the
// kernels may use. Only constant data: nothing here executes, so it is safe on any CPU. The bits
// follow CTXPOOL_CPU_FEATURES in core/cpu_target.h.
#include "core/cpu_target.h"

namespace ctxpool::detail {

namespace {
constexpr unsigned bit(int i) { return 1u << i; }
}  // namespace

extern const unsigned kCompiledCpuFeatures = 0u
#ifdef __SSE4_2__
    | bit(0)
#endif
#ifdef __POPCNT__
    | bit(1)
#endif
#ifdef __AVX__
    | bit(2)
#endif
#ifdef __AVX2__
    | bit(3)
#endif
#ifdef __FMA__
    | bit(4)
#endif
#ifdef __BMI__
    | bit(5)
#endif
#ifdef __BMI2__
    | bit(6)
#endif
#ifdef __LZCNT__
    | bit(7)
#endif
#ifdef __MOVBE__
    | bit(8)
#endif
#ifdef __F16C__
    | bit(9)
#endif
#ifdef __AVX512F__
    | bit(10)
#endif
#ifdef __AVX512CD__
    | bit(11)
#endif
#ifdef __AVX512BW__
    | bit(12)
#endif
#ifdef __AVX512DQ__
    | bit(13)
#endif
#ifdef __AVX512VL__
    | bit(14)
#endif
#ifdef __AVX512VNNI__
    | bit(15)
#endif
#ifdef __AVX512BF16__
    | bit(16)
#endif
#ifdef __AVX512VBMI__
    | bit(17)
#endif
#ifdef __AVX512VBMI2__
    | bit(18)
#endif
#ifdef __AVX512IFMA__
    | bit(19)
#endif
#ifdef __AVX512BITALG__
    | bit(20)
#endif
#ifdef __AVX512VPOPCNTDQ__
    | bit(21)
#endif
#ifdef __AVX512FP16__
    | bit(22)
#endif
#ifdef __GFNI__
    | bit(23)
#endif
#ifdef __VAES__
    | bit(24)
#endif
#ifdef __VPCLMULQDQ__
    | bit(25)
#endif
#ifdef __AVXVNNI__
    | bit(26)
#endif
    ;

}  // namespace ctxpool::detail
