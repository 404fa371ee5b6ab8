// What a trained ContextPool LM pools: the support size s (in tokens) that each ContextPool layer
// chooses for every character of a passage, and the passage rendered as HTML with each character
// coloured by its s (the value on hover). ctxpool-supports is the command around it;
// scripts/plot_supports.sh draws a PNG from the JSON.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/transformer_lm.h"

namespace ctxpool::models {

struct SupportMap {
  std::string text;                         // the passage, one byte per token
  double s_min = 0, s_max = 0;              // the range of s (the colour scale's ends)
  int64_t window = 0;                       // characters per forward pass (the model's context)
  std::vector<std::vector<double>> layers;  // [layer][character] -> s, in the order of context_pools()

  nlohmann::json to_json() const;  // {"text": [bytes], "s_min", "s_max", "window", "layers"}
};

// Runs the passage `ids` through `model` (eval mode, no gradients), one window of the model's
// context at a time, so a window's first characters see less context, as in training. `text` is
// the passage decoded (one byte per id). The model must have at least one ContextPool layer.
SupportMap measure_supports(TransformerLM& model, const std::vector<int64_t>& ids, const std::string& text);

// A standalone HTML page: `heading` (escaped) above the passage once per layer. A multi-byte UTF-8
// character is one span, coloured by its first byte's s, with every byte's s on hover.
std::string render_supports_html(const SupportMap& map, const std::string& heading);

}  // namespace ctxpool::models
