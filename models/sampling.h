// Autoregressive sampling from a language model: temperature, top-k, a seeded generator.
#pragma once
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "nn/module.h"

namespace ctxpool::models {

struct SampleOptions {
  int64_t length = 200;      // tokens to generate
  double temperature = 1.0;  // > 0; lower is more conservative
  int64_t top_k = 0;         // 0: the whole vocabulary
  int64_t context = 128;     // the model's context: only the last `context` tokens are fed
};

// Returns prompt + generated tokens. `model` maps [1, T] ids to [1, T, vocab] logits.
std::vector<int64_t> sample(nn::Module& model, std::vector<int64_t> prompt, const SampleOptions& options,
                            Generator& gen);

}  // namespace ctxpool::models
