// The LM's variants (attention kinds, ContextPool placements and modes): causality of the whole
// model, parameters, regularisers, logged diagnostics, FLOPs, config checks, and short training runs.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "helpers/test_utils.h"
#include "helpers/tiny_run.h"
#include "models/image_classifier.h"
#include "models/trainer.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

models::ModelConfig tiny_model() {
  models::ModelConfig c;
  c.vocab_size = 11;
  c.n_layers = 2;
  c.d_model = 16;
  c.n_heads = 2;
  c.d_mlp = 32;
  c.context = 12;
  c.init_std = 0.2;  // larger than usual so every path visibly changes the logits
  return c;
}

struct Variant {
  std::string name;
  models::ModelConfig config;
};

std::vector<Variant> variants() {
  std::vector<Variant> out;
  const models::ModelConfig base = tiny_model();
  out.push_back({"full", base});
  models::ModelConfig c = base;
  c.attention = "local";
  c.local_window = 3;
  out.push_back({"local", c});
  c = base;
  c.attention = "adaptive_span";
  c.adaptive_span.ramp = 4;
  c.adaptive_span.init = 0.3;
  out.push_back({"adaptive_span", c});
  for (const char* pooled : {"kv", "qkv"}) {
    for (const char* mode : {"full", "weights_only", "uniform"}) {
      c = base;
      c.context_pool.enabled = true;
      c.context_pool.window = 4;
      c.context_pool.pooled = pooled;
      c.context_pool.mode = mode;
      out.push_back({std::string("cp attn_input ") + pooled + " " + mode, c});
    }
  }
  for (const char* attention : {"local", "adaptive_span"}) {  // ContextPool with either baseline's attention
    c = base;
    c.attention = attention;
    c.local_window = 3;
    c.context_pool.enabled = true;
    c.context_pool.window = 4;
    out.push_back({std::string("cp kv + ") + attention, c});
  }
  for (bool residual : {false, true}) {
    c = base;
    c.n_layers = 3;
    c.context_pool.enabled = true;
    c.context_pool.placement = "between";
    c.context_pool.residual = residual;
    out.push_back({std::string("cp between residual=") + (residual ? "1" : "0"), c});
  }
  return out;
}

}  // namespace

// Changing token j changes no logits at positions i < j (exactly, in float64), for every variant.
TEST(LMVariants, EveryVariantIsCausal) {
  for (const Variant& v : variants()) {
    manual_seed(21);
    models::TransformerLM model(v.config, kFloat64);
    const Tensor idx = ops::argmax(randn({2, 12, 11}), 2);  // random ids in [0, 11)
    const std::vector<double> before = model.forward(idx).to_vector<double>();
    for (int64_t j : {0, 4, 11}) {
      Tensor changed = idx.clone();
      changed.select(1, j).fill_(static_cast<double>((static_cast<int64_t>(idx.at({0, j})) + 5) % 11));
      const std::vector<double> after = model.forward(changed).to_vector<double>();
      bool past_changed = false, own_changed = false;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i <= j; ++i)
          for (int64_t e = 0; e < 11; ++e) {
            const size_t at = (b * 12 + i) * 11 + e;
            (i < j ? past_changed : own_changed) |= before[at] != after[at];
          }
      EXPECT_FALSE(past_changed) << v.name << ": logits before token " << j << " changed";
      EXPECT_TRUE(own_changed) << v.name << ": changing token " << j << " changed nothing";
    }
  }
}

TEST(LMVariants, ParametersFollowTheConfig) {
  models::ModelConfig c = tiny_model();
  c.context_pool.enabled = true;
  auto names = [](const models::TransformerLM& m) {
    std::string all;
    for (auto& [name, p] : m.named_parameters()) all += name + " ";
    return all;
  };
  const std::string kv = names(models::TransformerLM(c));
  EXPECT_NE(kv.find("blocks.0.pool.conv1.weight"), std::string::npos);
  EXPECT_NE(kv.find("blocks.1.attn.q.weight"), std::string::npos);
  EXPECT_NE(kv.find("blocks.1.attn.kv.weight"), std::string::npos);
  c.context_pool.pooled = "qkv";
  EXPECT_NE(names(models::TransformerLM(c)).find("blocks.0.attn.qkv.weight"), std::string::npos);
  // Splitting the projections costs no parameters (and no FLOPs).
  EXPECT_EQ(models::TransformerLM(c).num_parameters(), [&] {
    models::ModelConfig kv_config = c;
    kv_config.context_pool.pooled = "kv";
    return models::TransformerLM(kv_config).num_parameters();
  }());
  c.context_pool.placement = "between";
  const std::string between = names(models::TransformerLM(c));
  EXPECT_NE(between.find("pools.0.conv1.weight"), std::string::npos);
  EXPECT_EQ(between.find("pools.1."), std::string::npos);  // none after the last block
  EXPECT_EQ(between.find("blocks.0.pool"), std::string::npos);
  c = tiny_model();
  c.attention = "adaptive_span";
  EXPECT_NE(names(models::TransformerLM(c)).find("blocks.1.attn.span.z"), std::string::npos);
}

TEST(LMVariants, FlopsPerTokenFromTheShapes) {
  models::ModelConfig c = tiny_model();  // d 16, d_mlp 32, T 12, vocab 11, 2 layers
  const double d = 16, keys = 12;  // full attention computes all T scores per query (then masks)
  const double plain = 2 * (8 * d * d + 4 * d * 32 + 4 * d * keys) + 2 * d * 11;
  EXPECT_DOUBLE_EQ(models::TransformerLM(c).flops_per_token(), plain);
  c.attention = "local";
  c.local_window = 1;  // one key per query
  EXPECT_DOUBLE_EQ(models::TransformerLM(c).flops_per_token(), plain - 2 * 4 * d * (keys - 1));
  c = tiny_model();
  c.context_pool.enabled = true;
  c.context_pool.window = 4;  // pooled tokens per query: min(i, 4) + 1, mean (1+2+3+4+5*8)/12
  const double h = 4, pooled = (1 + 2 + 3 + 4 + 5.0 * 8) / 12;
  EXPECT_NEAR(models::TransformerLM(c).flops_per_token(), plain + 2 * (2 * 3 * (d * h + 2 * h) + 2 * d * pooled), 1e-9);
  c.context_pool.mode = "uniform";  // no predictor
  EXPECT_NEAR(models::TransformerLM(c).flops_per_token(), plain + 2 * (2 * d * pooled), 1e-9);
}

// The ablation switches (examples/grids/contextpool_ablations.json) reach the modules they name,
// from a config's JSON: the predictor's width and kernel, s_max, and the fixed support.
TEST(LMVariants, ContextPoolSwitchesReachTheModules) {
  const nlohmann::json cp = {{"enabled", true}, {"window", 8}, {"hidden", 5}, {"kernel_size", 5}, {"s_max", 3.0}};
  models::ModelConfig c = models::RunConfig::from_json({{"model", {{"context_pool", cp}}}}).model;
  c.vocab_size = 11;
  c.d_model = 16;
  const models::TransformerLM model(c);
  ASSERT_EQ(model.context_pools().size(), 4u);  // the default 4 layers, one pool each
  for (const auto& pool : model.context_pools()) {
    EXPECT_EQ(pool->conv1->out_channels, 5);
    EXPECT_EQ(pool->conv1->kernel_size, 5);
    EXPECT_EQ(pool->conv2->kernel_size, 5);
    EXPECT_EQ(pool->conv1->pad_left, 4);  // causal: the predictor sees no later token
    EXPECT_DOUBLE_EQ(*pool->options().pool.s_max, 3.0);
    EXPECT_EQ(pool->options().pool.window, 8);
  }
  // FLOPs count the wider kernel: 2 convolutions of 5 taps instead of 3 (same hidden width 5).
  models::ModelConfig k3 = c;
  k3.context_pool.kernel_size = 3;
  const double per_layer = 2.0 * 2 * (16 * 5 + 5 * 2);  // 2 FLOPs x 2 extra taps x (conv1 + conv2 weights)
  EXPECT_NEAR(model.flops_per_token() - models::TransformerLM(k3).flops_per_token(), 4 * per_layer, 1e-9);

  // weights_only with s_fixed: every token's support is exactly s_fixed.
  manual_seed(5);
  c.context_pool.mode = "weights_only";
  c.context_pool.s_fixed = 1.6;
  c.n_layers = 2;
  models::TransformerLM fixed(c);
  fixed.forward(ops::argmax(randn({2, 12, 11}), 2));
  for (const auto& pool : fixed.context_pools()) {
    EXPECT_DOUBLE_EQ(*pool->options().pool.s_fixed, 1.6);
    EXPECT_NEAR(pool->mean_support(), 1.6, 1e-6);  // float32 activations
  }
}

// `residual` (out = x + pooled) reaches every pool of either placement from a config's JSON, and it
// changes the model's output: with the same initial weights, the logits differ.
TEST(LMVariants, ResidualSwitchReachesThePoolsAndChangesTheOutput) {
  models::RunConfig tiny;
  tiny.model = tiny_model();
  tiny.model.n_layers = 3;
  for (const char* placement : {"attn_input", "between"}) {
    Tensor logits[2];
    for (bool residual : {false, true}) {
      nlohmann::json j = tiny.to_json();
      j["model"]["context_pool"] = {{"enabled", true}, {"placement", placement}, {"residual", residual}, {"window", 4}};
      manual_seed(31);  // the same initial weights for both settings (residual adds no parameters)
      models::TransformerLM model(models::RunConfig::from_json(j).model, kFloat64);
      ASSERT_EQ(model.context_pools().size(), std::string(placement) == "between" ? 2u : 3u) << placement;
      for (const auto& pool : model.context_pools()) EXPECT_EQ(pool->options().residual, residual) << placement;
      manual_seed(32);
      logits[residual] = model.forward(ops::argmax(randn({2, 12, 11}), 2));
    }
    EXPECT_GT(ops::max(ops::abs(ops::sub(logits[0], logits[1]))).item(), 1e-3)
        << placement << ": residual did not change the logits";
  }
}

TEST(LMVariants, RegularisersClampingAndDiagnostics) {
  manual_seed(22);
  models::ModelConfig c = tiny_model();
  c.attention = "adaptive_span";
  c.adaptive_span.init = 0.5;
  c.context_pool.enabled = true;
  c.context_pool.lambda = 0.01;
  models::TransformerLM model(c, kFloat64);
  EXPECT_FALSE(models::TransformerLM(tiny_model()).auxiliary_loss().defined());
  model.forward(ops::argmax(randn({2, 12, 11}), 2));
  const auto diag = model.diagnostics();
  ASSERT_EQ(diag.size(), 6u);
  EXPECT_EQ(diag[0].first, "cp_support/0");
  EXPECT_EQ(diag[1].first, "cp_weight/0");
  EXPECT_EQ(diag[4].first, "span/0");
  EXPECT_DOUBLE_EQ(diag[4].second, 0.5 * 12);  // S defaults to the context
  // aux = sum over layers of lambda * mean(s) + lambda_span * S * mean(z)
  double want = 2 * 2e-6 * 12 * 0.5;
  want += 0.01 * (diag[0].second + diag[2].second);
  EXPECT_NEAR(model.auxiliary_loss().item(), want, 1e-12);
  // z is clamped to [0, 1] after an optimizer step (both ends).
  Tensor z0 = model.block(0)->attn->span->z, z1 = model.block(1)->attn->span->z;
  {
    autograd::NoGradGuard no_grad;
    z0.copy_(tensor({1.7, 0.4}, kFloat64));
    z1.copy_(tensor({-0.3, 0.9}, kFloat64));
  }
  model.after_optimizer_step();
  expect_values(z0, {1.0, 0.4}, 0.0);
  expect_values(z1, {0.0, 0.9}, 0.0);
}

// Resuming a run with both regularisers (ContextPool lambda, adaptive span) and span clamping
// reproduces the uninterrupted losses bit for bit.
TEST(LMVariants, ResumeIsExactWithRegularisersAndSpans) {
  TinyRun run("variant_resume", 12);
  run.cfg.model.attention = "adaptive_span";
  run.cfg.model.adaptive_span.lambda = 1e-3;
  run.cfg.model.context_pool.enabled = true;
  run.cfg.model.context_pool.lambda = 1e-3;
  std::vector<double> straight;
  {
    models::Trainer t(run.cfg);
    t.fit();
    for (const auto& r : t.history()) straight.push_back(r.train_loss + r.aux_loss);
  }
  std::filesystem::remove_all(run.cfg.train.run_dir);
  models::RunConfig half = run.cfg;
  half.train.stop_after = 5;
  models::Trainer(half).fit();
  models::Trainer resumed(run.cfg, /*resume=*/true);
  ASSERT_EQ(resumed.step(), 5);
  resumed.fit();
  ASSERT_EQ(resumed.history().size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    const auto& r = resumed.history()[i];
    EXPECT_EQ(r.train_loss + r.aux_loss, straight[5 + i]) << "step " << 6 + i;
  }
}

// Configs built in code are checked too (not only those read from JSON).
TEST(LMVariants, ModelConfigIsValidatedByTheModel) {
  models::ModelConfig c = tiny_model();
  c.context_pool.placement = "betwen";
  EXPECT_ERROR_WITH(models::TransformerLM{c}, "model.context_pool.placement", "betwen", "between");
  c = tiny_model();
  c.context_pool.s_min = 0.0;
  EXPECT_ERROR_WITH(models::TransformerLM{c}, "model.context_pool.s_min");
}

TEST(LMVariants, ConfigChecksNameTheKey) {
  using models::RunConfig;
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"attention", "sparse"}}}}), "model.attention", "sparse");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"placment", "between"}}}}}}),
                    "unknown key 'model.context_pool.placment'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"mode", "gauss"}}}}}}), "context_pool.mode");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"pooled", "q"}}}}}}), "context_pool.pooled");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"window", 2.5}}}}}}),
                    "'model.context_pool.window' must be an integer");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"adaptive_span", {{"init", 2.0}}}}}}), "adaptive_span");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"s_min", 2.0}, {"s_max", 1.0}}}}}}),
                    "model.context_pool.s_max", ">= s_min");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context_pool", {{"lambda", 0.1}, {"mode", "uniform"}}}}}}),
                    "model.context_pool.lambda", "full");
  const auto c = RunConfig::from_json({{"model", {{"attention", "local"}, {"local_window", 8},
                                                  {"context_pool", {{"enabled", true}, {"pooled", "qkv"}}}}}});
  EXPECT_EQ(c.model.local_window, 8);
  EXPECT_TRUE(c.model.context_pool.enabled);
  EXPECT_EQ(RunConfig::from_json(c.to_json()).to_json(), c.to_json());
}

// A ContextPool LM and an adaptive-span LM train: the loss falls, and metrics.jsonl and model.json
// carry the logged support sizes, spans, parameters and FLOPs.
TEST(LMVariants, TrainAndLog) {
  for (const std::string variant : {"context_pool", "adaptive_span"}) {
    TinyRun run("variant_" + variant, 60);
    if (variant == "context_pool") {
      run.cfg.model.context_pool.enabled = true;
      run.cfg.model.context_pool.window = 8;
      run.cfg.model.context_pool.lambda = 1e-3;
    } else {
      run.cfg.model.attention = "adaptive_span";
    }
    run.cfg.train.log_interval = 20;
    models::Trainer trainer(run.cfg);
    trainer.fit();
    const auto& h = trainer.history();
    EXPECT_LT(h.back().train_loss, h.front().train_loss - 0.5) << variant;
    EXPECT_FALSE(std::isnan(h.back().aux_loss)) << variant;
    std::ifstream metrics(run.cfg.train.run_dir + "/metrics.jsonl");
    std::string line, logged;
    while (std::getline(metrics, line))
      if (line.find("\"step\":20,") != std::string::npos) logged = line;
    const auto j = nlohmann::json::parse(logged);
    if (variant == "context_pool") {
      for (const char* key : {"cp_support/0", "cp_weight/0", "cp_support/1", "cp_weight/1"}) EXPECT_TRUE(j.contains(key)) << key;
      EXPECT_GT(j["cp_support/0"].get<double>(), 0.5);
      EXPECT_LT(j["cp_support/0"].get<double>(), 4.0);
    } else {
      EXPECT_TRUE(j.contains("span/0") && j.contains("span/1"));
    }
    const auto info = nlohmann::json::parse(read_file(run.cfg.train.run_dir + "/model.json"));
    EXPECT_EQ(info["parameters"].get<int64_t>(), trainer.model().num_parameters());
    EXPECT_DOUBLE_EQ(info["flops_per_token"].get<double>(), trainer.model().flops_per_token());
  }
}

// Every shipped example config parses and builds its model.
TEST(LMVariants, ExampleConfigsBuild) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CTXPOOL_EXAMPLES_DIR "/configs")) {
    if (entry.path().extension() != ".json") continue;
    models::RunConfig c = models::RunConfig::from_file(entry.path().string());
    if (c.model.is_image_model()) {  // a Fashion-MNIST classifier
      c.model.image.in_channels = 1;
      c.model.image.image_size = 28;
      c.model.image.num_classes = 10;
      auto model = models::make_image_classifier(c.model);
      EXPECT_GT(model->num_parameters(), 0) << entry.path();
      EXPECT_GT(model->flops_per_image(), 0) << entry.path();
      ++count;
      continue;
    }
    c.model.vocab_size = 65;
    models::TransformerLM model(c.model);
    EXPECT_GT(model.num_parameters(), 0) << entry.path();
    EXPECT_GT(model.flops_per_token(), 0) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 5);
}
