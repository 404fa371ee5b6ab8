// Element types. float32 everywhere, float64 on CPU (gradcheck), int64 for indices, bool for masks.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <type_traits>

#include "core/error.h"

#ifdef __CUDACC__
#define CTXPOOL_HOST_DEVICE __host__ __device__
#else
#define CTXPOOL_HOST_DEVICE
#endif

namespace ctxpool {

enum class DType : uint8_t { Float32, Float64, Int64, Bool };

constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;
constexpr DType kInt64 = DType::Int64;
constexpr DType kBool = DType::Bool;

inline size_t element_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

// The C++ type behind each dtype. Bool is stored as one byte.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };

// v as a D, the conversion every backend's copy and fill use: to bool (stored as uint8_t, the only
// one-byte dtype) means v != 0, as in PyTorch (so 0.5, -1 and NaN are true), never a truncating cast.
template <typename D, typename S>
CTXPOOL_HOST_DEVICE inline D convert_to(S v) {
  if constexpr (std::is_same_v<D, uint8_t>) {
    return static_cast<uint8_t>(v != S(0));
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace ctxpool

// Runs the body with `scalar_t` bound to the C++ type of a floating dtype; other dtypes are an error
// naming the op. Usage: CTXPOOL_DISPATCH_FLOAT(x.dtype(), "exp", [&] { kernel<scalar_t>(...); });
#define CTXPOOL_DISPATCH_FLOAT(dtype, op_name, ...)                                        \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      case ::ctxpool::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::ctxpool::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }   \
      default:                                                                             \
        ::ctxpool::detail::fail(op_name, ": expected a floating dtype (float32 or float64), got ", \
                                dtype);                                                    \
    }                                                                                      \
  }()

// Same, for every dtype (bool as uint8_t).
#define CTXPOOL_DISPATCH_ALL(dtype, op_name, ...)                                          \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      case ::ctxpool::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }    \
      case ::ctxpool::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }   \
      case ::ctxpool::DType::Int64: { using scalar_t = int64_t; return __VA_ARGS__(); }    \
      case ::ctxpool::DType::Bool: { using scalar_t = uint8_t; return __VA_ARGS__(); }     \
    }                                                                                      \
    ::ctxpool::detail::fail(op_name, ": unknown dtype");                                   \
  }()
