// ctxpool-supports: what a trained ContextPool LM pools. Runs a passage of validation text through
// the model and records, for every character and every ContextPool layer, the support size s (in
// tokens) the layer chose for it. Writes OUT.json (text, s_min, s_max, one list of s per layer) and
// OUT.html (the passage once per layer, each character coloured by its s, the value on hover);
// scripts/plot_supports.sh draws OUT.png from the JSON.
//
//   ctxpool-supports --checkpoint runs/grids/contextpool_lm/<config>/seed-1337 --best --out docs/results/supports
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "cli_args.h"
#include "models/checkpoint.h"
#include "models/trainer.h"
#include "nn/serialize.h"

using namespace ctxpool;

namespace {

// s in [lo, hi] -> a colour from pale blue (small support) to deep red (large).
std::string colour(double s, double lo, double hi) {
  const double t = hi > lo ? std::min(1.0, std::max(0.0, (s - lo) / (hi - lo))) : 0.5;
  char buf[32];
  std::snprintf(buf, sizeof buf, "rgb(%d,%d,%d)", static_cast<int>(200 + 55 * t), static_cast<int>(225 - 165 * t),
                static_cast<int>(255 - 195 * t));
  return buf;
}

std::string html_escape(char c) {
  switch (c) {
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '&': return "&amp;";
    case '"': return "&quot;";
    case '\n': return "&#8629;<br>";
    default: return std::string(1, c);
  }
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

int main(int argc, char** argv) {
  try {
    std::string checkpoint, out = "supports";
    int64_t offset = 0, length = 512;
    bool best = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        CTXPOOL_CHECK(i + 1 < argc, "ctxpool-supports: ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--checkpoint") checkpoint = value();
      else if (a == "--out") out = value();
      else if (a == "--offset") offset = cli::parse_int("ctxpool-supports", a, value(), 0, INT64_MAX);
      else if (a == "--length") length = cli::parse_int("ctxpool-supports", a, value(), 1, 1 << 24);
      else if (a == "--best") best = true;
      else {
        if (a != "--help" && a != "-h") std::fprintf(stderr, "error: ctxpool-supports: unknown argument '%s'\n", a.c_str());
        std::puts("usage: ctxpool-supports --checkpoint RUN_DIR [--best] [--offset N] [--length N] [--out PREFIX]\n"
                  "  --best      the weights with the best validation bpc (best.safetensors) instead of the latest\n"
                  "  --offset N  where the passage starts in the validation split (default 0); --length N (512)");
        return a == "--help" || a == "-h" ? 0 : 1;
      }
    }
    CTXPOOL_CHECK(!checkpoint.empty(), "ctxpool-supports: --checkpoint is required");
    const models::Checkpoint ckpt = models::load_checkpoint(checkpoint);
    CTXPOOL_CHECK(ckpt.sidecar.contains("config"), "ctxpool-supports: '", checkpoint, "' has no config");
    const models::RunConfig cfg = models::RunConfig::from_json(ckpt.sidecar.at("config"));
    CTXPOOL_CHECK(!cfg.model.is_image_model(), "ctxpool-supports: '", checkpoint, "' is not a language model's "
                  "checkpoint (model.type \"", cfg.model.type, "\")");
    models::TransformerLM model(cfg.model);
    const std::filesystem::path where(checkpoint);
    const std::string run_dir = std::filesystem::is_directory(where) ? where.string() : where.parent_path().string();
    model.load_state_dict(best ? nn::load_safetensors(run_dir + "/best.safetensors") : ckpt.model);
    model.eval();
    const auto pools = model.context_pools();
    CTXPOOL_CHECK(!pools.empty(), "ctxpool-supports: the model in '", checkpoint, "' has no ContextPool layer");

    nn::data::CorpusOptions copts;
    copts.train_fraction = cfg.data.train_fraction;
    copts.validation_fraction = cfg.data.validation_fraction;
    const auto corpus = nn::data::TextCorpus::load(models::resolve_data_path(cfg.data.path, cfg.data.base_dir), copts);
    CTXPOOL_CHECK(corpus.vocab() == ckpt.sidecar.at("vocab").get<std::vector<uint8_t>>(),
                  "ctxpool-supports: the corpus vocabulary differs from the checkpoint's");
    const auto& val = corpus.tokens(nn::data::Split::Validation);
    CTXPOOL_CHECK(offset >= 0 && length > 0 && offset + length <= static_cast<int64_t>(val.size()),
                  "ctxpool-supports: the passage [", offset, ", ", offset + length, ") is outside the validation split (",
                  val.size(), " tokens)");

    // One window of `context` tokens at a time (a window's first tokens see less context).
    std::vector<std::vector<double>> supports(pools.size());
    std::vector<int64_t> ids;
    NoGradGuard no_grad;
    for (int64_t start = offset; start < offset + length; start += cfg.model.context) {
      const int64_t n = std::min(cfg.model.context, offset + length - start);
      std::vector<int64_t> window(val.begin() + start, val.begin() + start + n);
      ids.insert(ids.end(), window.begin(), window.end());
      model.forward(from_vector(window, {1, n}, TensorOptions(kInt64)));
      for (size_t l = 0; l < pools.size(); ++l)
        for (double s : pools[l]->last_support().to(kFloat64).to_vector<double>()) supports[l].push_back(s);
    }
    const std::string text = corpus.decode(ids);
    const auto o = pools[0]->options().pool;
    const double lo = o.s_min, hi = *o.s_max;

    nlohmann::json j = {{"checkpoint", checkpoint}, {"weights", best ? "best" : "latest"}, {"offset", offset},
                        {"text", std::vector<uint8_t>(text.begin(), text.end())}, {"s_min", lo}, {"s_max", hi},
                        {"layers", supports}};
    write_file_atomic(out + ".json", j.dump() + "\n");

    std::ostringstream html;
    html << "<!doctype html><meta charset=\"utf-8\"><title>ContextPool support sizes</title>\n"
         << "<style>body{font-family:sans-serif} .t{font-family:monospace;white-space:pre-wrap;line-height:1.6}"
         << " span{padding:1px 0}</style>\n<h2>Learned support size s per character</h2>\n<p>"
         << checkpoint << " (" << (best ? "best-validation" : "latest") << " weights), validation text from offset "
         << offset << ". Pale blue: s = " << lo << " tokens; deep red: s = " << hi
         << " tokens. Hover a character for its value. Windows of " << cfg.model.context << " characters.</p>\n";
    for (size_t l = 0; l < supports.size(); ++l) {
      html << "<h3>ContextPool layer " << l << "</h3>\n<div class=\"t\">";
      // Tokens are bytes: a multi-byte UTF-8 character is one span, coloured by its first byte's s,
      // with every byte's s on hover.
      for (size_t c = 0; c < text.size();) {
        const size_t n = utf8_length(text, c);
        std::string title = "s =";
        for (size_t i = 0; i < n; ++i) {
          char value[24];
          std::snprintf(value, sizeof value, "%s %.2f", i ? " /" : "", supports[l][c + i]);
          title += value;
        }
        html << "<span style=\"background:" << colour(supports[l][c], lo, hi) << "\" title=\"" << title << "\">"
             << (n == 1 ? html_escape(text[c]) : text.substr(c, n)) << "</span>";
        c += n;
      }
      html << "</div>\n";
    }
    write_file_atomic(out + ".html", html.str());
    std::printf("wrote %s.json and %s.html (%zu characters, %zu ContextPool layers)\n", out.c_str(), out.c_str(),
                text.size(), supports.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
