#include "core/device.h"

#include <cstdlib>

#include "core/error.h"

namespace ctxpool {

Device parse_device(const std::string& text) {
  if (text == "cpu") return kCPU;
  if (text == "cuda") return cuda_device(0);
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5) {
    char* end = nullptr;
    const long index = std::strtol(text.c_str() + 5, &end, 10);
    if (end && *end == '\0' && index >= 0 && index < 1024) return cuda_device(static_cast<int>(index));
  }
  detail::fail("device: '", text, "' is not a device (expected \"cpu\", \"cuda\" or \"cuda:N\")");
}

}  // namespace ctxpool
