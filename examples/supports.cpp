// ctxpool-supports: what a trained ContextPool LM pools. Runs a passage of validation text through
// the model and records, for every character and every ContextPool layer, the support size s (in
// tokens) the layer chose for it (models/support_map.h). Writes OUT.json (text, s_min, s_max, one
// list of s per layer) and OUT.html (the passage once per layer, each character coloured by its s,
// the value on hover); scripts/plot_supports.sh draws OUT.png from the JSON.
//
//   ctxpool-supports --checkpoint runs/grids/contextpool_lm/<config>/seed-1337 --best --out docs/results/supports
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/file_io.h"
#include "cli_args.h"
#include "models/checkpoint.h"
#include "models/support_map.h"
#include "models/trainer.h"
#include "nn/serialize.h"

using namespace ctxpool;

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
    CTXPOOL_CHECK(!model.context_pools().empty(), "ctxpool-supports: the model in '", checkpoint,
                  "' has no ContextPool layer");
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
    const std::vector<int64_t> ids(val.begin() + offset, val.begin() + offset + length);
    const models::SupportMap map = models::measure_supports(model, ids, corpus.decode(ids));

    nlohmann::json j = map.to_json();
    j["checkpoint"] = checkpoint;
    j["weights"] = best ? "best" : "latest";
    j["offset"] = offset;
    write_file_atomic(out + ".json", j.dump() + "\n");
    write_file_atomic(out + ".html", models::render_supports_html(
        map, checkpoint + " (" + (best ? "best-validation" : "latest") + " weights), validation text from offset " +
                 std::to_string(offset) + "."));
    std::printf("wrote %s.json and %s.html (%zu characters, %zu ContextPool layers)\n", out.c_str(), out.c_str(),
                map.text.size(), map.layers.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
