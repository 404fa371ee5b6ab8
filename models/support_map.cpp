#include "models/support_map.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "autograd/grad_mode.h"

namespace ctxpool::models {

namespace {

// s in [lo, hi] -> a colour from pale blue (small support) to deep red (large).
std::string colour(double s, double lo, double hi) {
  const double t = hi > lo ? std::min(1.0, std::max(0.0, (s - lo) / (hi - lo))) : 0.5;
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)", static_cast<int>(200 + 55 * t), static_cast<int>(225 - 165 * t),
                static_cast<int>(255 - 195 * t));
  return buf;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\n': out += "&#8629;<br>"; break;
      default: out += c;
    }
  }
  return out;
}

// Bytes in the UTF-8 character at text[at]: its lead byte's length when that many continuation
// bytes (0x80-0xBF) follow, else 1 (a malformed byte is shown alone, and escaped like any other).
size_t utf8_length(const std::string& text, size_t at) {
  const auto lead = static_cast<unsigned char>(text[at]);
  const size_t n = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC0 && lead < 0xE0 ? 2 : 1;
  if (at + n > text.size()) return 1;
  for (size_t i = 1; i < n; ++i)
    if ((static_cast<unsigned char>(text[at + i]) & 0xC0) != 0x80) return 1;
  return n;
}

}  // namespace

nlohmann::json SupportMap::to_json() const {
  return {{"text", std::vector<uint8_t>(text.begin(), text.end())},
          {"s_min", s_min},
          {"s_max", s_max},
          {"window", window},
          {"layers", layers}};
}

SupportMap measure_supports(TransformerLM& model, const std::vector<int64_t>& ids, const std::string& text) {
  const auto pools = model.context_pools();
  CTXPOOL_CHECK(!pools.empty(), "measure_supports: the model has no ContextPool layer");
  CTXPOOL_CHECK(!ids.empty() && text.size() == ids.size(), "measure_supports: a passage of ", ids.size(),
                " tokens with a text of ", text.size(), " bytes (expected one byte per token, at least one)");
  SupportMap map;
  map.text = text;
  map.s_min = pools[0]->options().pool.s_min;
  map.s_max = *pools[0]->options().pool.s_max;
  map.window = model.config().context;
  map.layers.resize(pools.size());

  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const auto n_ids = static_cast<int64_t>(ids.size());
  for (int64_t start = 0; start < n_ids; start += map.window) {
    const int64_t n = std::min(map.window, n_ids - start);
    model.forward(from_vector(std::vector<int64_t>(ids.begin() + start, ids.begin() + start + n), {1, n},
                              TensorOptions(kInt64)));
    for (size_t l = 0; l < pools.size(); ++l)
      for (double s : pools[l]->last_support().to(kFloat64).to_vector<double>()) map.layers[l].push_back(s);
  }
  model.train(was_training);
  return map;
}

std::string render_supports_html(const SupportMap& map, const std::string& heading) {
  for (size_t l = 0; l < map.layers.size(); ++l)
    CTXPOOL_CHECK(map.layers[l].size() == map.text.size(), "render_supports_html: layer ", l, " has ",
                  map.layers[l].size(), " support sizes for ", map.text.size(), " characters");
  std::ostringstream html;
  html << "<!doctype html><meta charset=\"utf-8\"><title>ContextPool support sizes</title>\n"
       << "<style>body{font-family:sans-serif} .t{font-family:monospace;white-space:pre-wrap;line-height:1.6}"
       << " span{padding:1px 0}</style>\n<h2>Learned support size s per character</h2>\n<p>" << html_escape(heading)
       << " Pale blue: s = " << map.s_min << " tokens; deep red: s = " << map.s_max
       << " tokens. Hover a character for its value. Windows of " << map.window << " characters.</p>\n";
  for (size_t l = 0; l < map.layers.size(); ++l) {
    const std::vector<double>& s = map.layers[l];
    html << "<h3>ContextPool layer " << l << "</h3>\n<div class=\"t\">";
    for (size_t c = 0; c < map.text.size();) {
      const size_t n = utf8_length(map.text, c);
      std::string title = "s =";
      for (size_t i = 0; i < n; ++i) {
        char value[24];
        std::snprintf(value, sizeof value, "%s %.2f", i ? " /" : "", s[c + i]);
        title += value;
      }
      const std::string character = map.text.substr(c, n);
      html << "<span style=\"background:" << colour(s[c], map.s_min, map.s_max) << "\" title=\"" << title << "\">"
           << (n == 1 ? html_escape(character) : character) << "</span>";
      c += n;
    }
    html << "</div>\n";
  }
  return html.str();
}

}  // namespace ctxpool::models
