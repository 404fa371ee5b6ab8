// ctxpool-generate: sample text from a trained language model.
//
//   ctxpool-generate --checkpoint runs/lm_shakespeare_base --prompt "ROMEO:" --length 300
//                    --temperature 0.8 --top-k 20 --seed 1
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli_args.h"
#include "models/checkpoint.h"
#include "models/sampling.h"
#include "models/transformer_lm.h"
#include "nn/data/text_corpus.h"

using namespace ctxpool;

namespace {
constexpr const char* kTool = "ctxpool-generate";
}

int main(int argc, char** argv) {
  try {
    std::string checkpoint, prompt = "\n";
    models::SampleOptions opts;
    uint64_t seed = 0;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        CTXPOOL_CHECK(i + 1 < argc, "ctxpool-generate: ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--checkpoint") checkpoint = value();
      else if (a == "--prompt") prompt = value();
      else if (a == "--length") opts.length = cli::parse_int(kTool, a, value(), 1, 100000000);
      else if (a == "--temperature") opts.temperature = cli::parse_double(kTool, a, value(), 1e-6, 1e6);
      else if (a == "--top-k") opts.top_k = cli::parse_int(kTool, a, value(), 0, 1 << 20);
      else if (a == "--seed") seed = static_cast<uint64_t>(cli::parse_int(kTool, a, value(), 0, INT64_MAX));
      else {
        if (a != "--help" && a != "-h") std::fprintf(stderr, "error: ctxpool-generate: unknown argument '%s'\n", a.c_str());
        std::puts("usage: ctxpool-generate --checkpoint RUN_DIR_OR_SIDECAR [--prompt TEXT] [--length N]\n"
                  "                        [--temperature T] [--top-k K] [--seed S]");
        return a == "--help" || a == "-h" ? 0 : 1;
      }
    }
    CTXPOOL_CHECK(!checkpoint.empty(), "ctxpool-generate: --checkpoint is required");
    const models::Checkpoint ckpt = models::load_checkpoint(checkpoint);
    CTXPOOL_CHECK(ckpt.sidecar.contains("config"), "ctxpool-generate: '", checkpoint, "' has no config");
    const models::RunConfig cfg = models::RunConfig::from_json(ckpt.sidecar.at("config"));
    CTXPOOL_CHECK(!cfg.model.is_image_model() && ckpt.sidecar.contains("vocab"), "ctxpool-generate: '", checkpoint,
                  "' is not a language model's checkpoint (model.type \"", cfg.model.type, "\")");
    const std::vector<uint8_t> vocab = ckpt.sidecar.at("vocab").get<std::vector<uint8_t>>();
    models::TransformerLM model(cfg.model);
    model.load_state_dict(ckpt.model);
    const auto codec = nn::data::TextCorpus::codec(vocab);
    opts.context = cfg.model.context;
    Generator gen(seed);
    const auto ids = models::sample(model, codec.encode(prompt), opts, gen);
    std::fwrite(codec.decode(ids).data(), 1, ids.size(), stdout);
    std::puts("");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
