// Strict number arguments for the command-line tools: the whole text must be the number, in range;
// otherwise a clear error naming the tool, the flag and what it got ("ctxpool-generate: --length
// needs an integer in [1, 1000000], got '10x'").
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace ctxpool::cli {

inline int64_t parse_int(const char* tool, const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  CTXPOOL_CHECK(!text.empty() && *end == '\0' && errno == 0 && n >= min && n <= max, tool, ": ", flag,
                " needs an integer in [", min, ", ", max, "], got '", text, "'");
  return n;
}

inline double parse_double(const char* tool, const std::string& flag, const std::string& text, double min, double max) {
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(text.c_str(), &end);
  CTXPOOL_CHECK(!text.empty() && *end == '\0' && errno == 0 && std::isfinite(x) && x >= min && x <= max, tool, ": ",
                flag, " needs a number in [", min, ", ", max, "], got '", text, "'");
  return x;
}

}  // namespace ctxpool::cli
