// libFuzzer target: the safetensors reader (nn/serialize.h) on arbitrary bytes. Every tensor it
// accepts must be readable to its last element.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_guard.h"
#include "nn/serialize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ctxpool::fuzz::expect_only_clear_errors("fuzz_safetensors", [&] {
    std::map<std::string, std::string> metadata;
    for (const auto& [name, t] : ctxpool::nn::from_safetensors(bytes, "<fuzz>", &metadata))
      if (t.numel() > 0) (void)t.to_vector<double>().back();
  });
  return 0;
}
