// ctxpool-generate: sample text from a trained language model.
//
//   ctxpool-generate --checkpoint runs/lm_shakespeare_base --prompt "ROMEO:" --length 300
//                    --temperature 0.8 --top-k 20 --seed 1
#include <cstdio>
#include <cstdlib>
#include <string>

#include "models/checkpoint.h"
#include "models/sampling.h"
#include "models/transformer_lm.h"
#include "nn/data/text_corpus.h"

using namespace ctxpool;

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
      else if (a == "--length") opts.length = std::stoll(value());
      else if (a == "--temperature") opts.temperature = std::stod(value());
      else if (a == "--top-k") opts.top_k = std::stoll(value());
      else if (a == "--seed") seed = std::stoull(value());
      else {
        std::puts("usage: ctxpool-generate --checkpoint RUN_DIR_OR_SIDECAR [--prompt TEXT] [--length N]\n"
                  "                        [--temperature T] [--top-k K] [--seed S]");
        return a == "--help" || a == "-h" ? 0 : 1;
      }
    }
    CTXPOOL_CHECK(!checkpoint.empty(), "ctxpool-generate: --checkpoint is required");
    const models::Checkpoint ckpt = models::load_checkpoint(checkpoint);
    const models::RunConfig cfg = models::RunConfig::from_json(ckpt.sidecar.at("config"));
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
