// ctxpool::Error and CTXPOOL_CHECK: every bad input becomes an exception whose message names the op,
// the shapes/dtypes/devices involved and what was expected. Never a crash, never a silent wrong answer.
#pragma once
#include <cstdint>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctxpool {

// Shapes ([2, 3]) print inside error messages; defined in core/shape.cpp.
std::ostream& operator<<(std::ostream& os, const std::vector<int64_t>& shape);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}
}  // namespace detail
}  // namespace ctxpool

// CTXPOOL_CHECK(cond, "matmul: cannot multiply ", a.sizes(), " by ", b.sizes());
#define CTXPOOL_CHECK(cond, ...)                          \
  do {                                                    \
    if (!(cond)) ::ctxpool::detail::fail(__VA_ARGS__);    \
  } while (0)
