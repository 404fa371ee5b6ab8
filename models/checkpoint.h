// Checkpoints: the tensors (model parameters, optimizer state) in a safetensors file, readable by any
// safetensors reader, plus a JSON sidecar with the config, vocabulary, step, optimizer step count and
// RNG states, so that a resumed run continues exactly. In a run directory:
//   ckpt-000500.safetensors, ckpt-000500.json, latest  (names the newest sidecar; written last)
// Every file is written atomically; the sidecar records the tensor file's size and checksum, and a
// checksum of itself, so a truncated or altered checkpoint (an edited step, RNG state or config
// included) is an error, never a silently different model.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace ctxpool::models {

struct Checkpoint {
  int64_t step = 0;
  nlohmann::json sidecar;                   // config, vocab, optimizer, rng, metrics (free-form)
  std::map<std::string, Tensor> model;      // parameter name -> tensor
  std::map<std::string, Tensor> optimizer;  // optimizer state name -> tensor
};

// Writes the checkpoint into run_dir and points `latest` at it; keeps the newest `keep_last`.
void save_checkpoint(const std::string& run_dir, const Checkpoint& ckpt, int keep_last = 2);
// `path`: a run directory (its latest checkpoint) or a ckpt-*.json sidecar.
Checkpoint load_checkpoint(const std::string& path);
bool has_checkpoint(const std::string& run_dir);

}  // namespace ctxpool::models
