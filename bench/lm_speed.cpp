// Training speed of the language model on one device: N timed AdamW steps (after a warm-up) of a
// TransformerLM on random tokens, reported as one JSON line. bench/reference/lm_speed.py measures the
// same model in PyTorch; scripts/gpu_check.sh (GPU) and scripts/bench.sh (CPU) run both and print the
// ratio. With CTXPOOL_PROFILE=1 it also prints where the timed steps went, op by op (core/profile.h).
//
//   build/bench/lm_speed --device cuda --layers 12 --d-model 512 --heads 8 --context 512 --batch 16
//   build/bench/lm_speed --config examples/configs/lm_shakespeare_contextpool.json --vocab 65 --threads 2
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/parallel.h"
#include "core/profile.h"
#include "cuda/cuda_api.h"
#include "models/config.h"
#include "models/transformer_lm.h"
#include "nn/optim/adamw.h"
#include "ops/ops.h"

using namespace ctxpool;

int main(int argc, char** argv) {
  try {
    models::ModelConfig cfg;
    cfg.vocab_size = 256;
    int64_t batch = 32, steps = 30, warmup = 5;
    bool from_config = false;
    std::string device_name = "cpu";
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      CTXPOOL_CHECK(a == "--help" || i + 1 < argc, "lm_speed: ", a, " needs a value");
      auto next = [&] { return std::strtoll(argv[++i], nullptr, 10); };
      if (a == "--help") {
        std::puts("usage: lm_speed [--device cpu|cuda] [--config FILE] [--layers N] [--d-model N] [--heads N]\n"
                  "                [--context N] [--batch N] [--vocab N] [--steps N] [--warmup N] [--threads N]\n"
                  "  --config takes the model and batch size of a training config (other flags then override);\n"
                  "  without it the model is the base LM with d_mlp = 4 d_model.");
        return 0;
      } else if (a == "--device") device_name = argv[++i];
      else if (a == "--config") {
        const models::RunConfig run = models::RunConfig::from_file(argv[++i]);
        cfg = run.model;
        batch = run.train.batch_size;
        from_config = true;
      } else if (a == "--vocab") cfg.vocab_size = next();
      else if (a == "--threads") set_num_threads(static_cast<int>(next()));
      else if (a == "--layers") cfg.n_layers = next();
      else if (a == "--d-model") cfg.d_model = next();
      else if (a == "--heads") cfg.n_heads = next();
      else if (a == "--context") cfg.context = next();
      else if (a == "--batch") batch = next();
      else if (a == "--steps") steps = next();
      else if (a == "--warmup") warmup = next();
      else detail::fail("lm_speed: unknown argument '", a, "' (see --help)");
    }
    if (!from_config) cfg.d_mlp = 4 * cfg.d_model;
    if (cfg.vocab_size <= 0) cfg.vocab_size = 256;  // a config's vocabulary comes from its data
    const Device device = parse_device(device_name);
    CTXPOOL_CHECK(steps > 0 && warmup >= 0 && batch > 0, "lm_speed: steps and batch must be positive");

    manual_seed(0);
    models::TransformerLM model(cfg);
    model.to(device);
    nn::optim::AdamW opt(model.parameters(), {1e-3, 0.9, 0.99, 1e-8, 0.1});
    // Random tokens in [0, vocab).
    const auto tokens = [&](std::vector<int64_t> shape) {
      const double top = static_cast<double>(cfg.vocab_size);
      return ops::clamp(ops::mul(rand(shape, kFloat64), scalar_tensor(top - 0.01, kFloat64)), 0, top - 1)
          .to(kInt64)
          .to(device);
    };
    const Tensor x = tokens({batch, cfg.context});
    const Tensor y = tokens({batch * cfg.context});
    double first_loss = 0, last_loss = 0, seconds = 0;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      if (s == warmup && device.is_cuda()) cuda::reset_peak_memory_stats(device.index);
      if (s == warmup) profile::reset();
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor logits = model.forward(x);
      const Tensor loss = ops::cross_entropy(logits.reshape({-1, cfg.vocab_size}), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      last_loss = loss.item();  // waits for the device
      if (s == 0) first_loss = last_loss;
      if (s >= warmup) seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double tokens_per_s = static_cast<double>(batch * cfg.context * steps) / seconds;
    nlohmann::json out = {{"framework", "ctxpool"},
                          {"device", device_name},
                          {"layers", cfg.n_layers},
                          {"d_model", cfg.d_model},
                          {"context", cfg.context},
                          {"batch", batch},
                          {"vocab", cfg.vocab_size},
                          {"threads", device.is_cuda() ? 0 : get_num_threads()},
                          {"parameters", model.num_parameters()},
                          {"ms_per_step", 1000.0 * seconds / static_cast<double>(steps)},
                          {"tokens_per_s", tokens_per_s},
                          // forward + backward ~ 3x the forward's FLOPs
                          {"tflops", 3.0 * model.flops_per_token() * tokens_per_s / 1e12},
                          {"first_loss", first_loss},
                          {"last_loss", last_loss}};
    if (device.is_cuda()) out["peak_mib"] = static_cast<double>(cuda::memory_stats(device.index).peak_allocated) / (1 << 20);
    if (profile::enabled()) profile::report(std::cerr, steps, 1000.0 * seconds / static_cast<double>(steps));
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lm_speed: %s\n", e.what());
    return 1;
  }
}
