// libFuzzer target: the run configuration (models/config.h) from arbitrary JSON, as ctxpool-train
// reads it: parsed, then RunConfig::from_json, which validates every value. Inputs that are not JSON
// at all stop at nlohmann's parser (RunConfig::from_file turns that into a ctxpool::Error).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_guard.h"
#include "models/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  ctxpool::fuzz::expect_only_clear_errors("fuzz_config", [&] {
    const auto config = ctxpool::models::RunConfig::from_json(j);
    // What is accepted must survive a round trip.
    (void)ctxpool::models::RunConfig::from_json(config.to_json());
  });
  return 0;
}
