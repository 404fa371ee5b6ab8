// libFuzzer target: a checkpoint's JSON sidecar (models/checkpoint.h). Each input is written as the
// sidecar beside a valid tensor file in a scratch directory and loaded as a resume would: the
// sidecar, its checksums, the tensor file it names, then the config inside it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/file_io.h"
#include "fuzz_guard.h"
#include "models/checkpoint.h"
#include "models/config.h"

namespace {
std::string scratch_dir;
}

// A real checkpoint (step 1) in a scratch directory; each input then replaces its sidecar. With
// CTXPOOL_FUZZ_SEED_OUT=path, writes the valid sidecar there and exits: scripts/fuzz.sh seeds the
// corpus with it, so that mutations start past the checksums.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char pattern[] = "/tmp/ctxpool-fuzz-checkpoint-XXXXXX";
  if (!mkdtemp(pattern)) std::abort();
  scratch_dir = pattern;
  ctxpool::models::Checkpoint ckpt;
  ckpt.step = 1;
  ckpt.model["w"] = ctxpool::full({2, 3}, 0.5, ctxpool::kFloat32);
  ckpt.optimizer["m.w"] = ctxpool::full({2, 3}, 0.0, ctxpool::kFloat32);
  ckpt.sidecar = {{"config", ctxpool::models::RunConfig().to_json()},
                  {"vocab", {10, 32, 97}},
                  {"optimizer", {{"type", "adamw"}, {"step_count", 1}}},
                  {"rng", {{"default", {{"seed", 1337}, {"offset", 4}}}}}};
  ctxpool::models::save_checkpoint(scratch_dir, ckpt);
  if (const char* seed_out = std::getenv("CTXPOOL_FUZZ_SEED_OUT")) {
    ctxpool::write_file_atomic(seed_out, ctxpool::read_file(scratch_dir + "/ckpt-000001.json"));
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string sidecar = scratch_dir + "/ckpt-000001.json";
  ctxpool::write_file_atomic(sidecar, std::string(reinterpret_cast<const char*>(data), size));
  ctxpool::fuzz::expect_only_clear_errors("fuzz_checkpoint", [&] {
    const auto ckpt = ctxpool::models::load_checkpoint(sidecar);
    if (ckpt.sidecar.contains("config")) (void)ctxpool::models::RunConfig::from_json(ckpt.sidecar["config"]);
  });
  return 0;
}
