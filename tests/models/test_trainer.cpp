// Trainer, checkpoints and the LM end to end, on a small synthetic corpus (no data files needed).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_run.h"
#include "models/checkpoint.h"
#include "models/sampling.h"
#include "models/trainer.h"

using namespace ctxpool;
using namespace ctxpool::testing;
namespace fs = std::filesystem;

TEST(Config, UnknownKeysAndWrongTypesNameTheKey) {
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"optim", {{"learning_rate", 0.1}}}}), "unknown key 'optim.learning_rate'");
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"optim", {{"lr", "fast"}}}}), "'optim.lr' must be a number");
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"train", {{"steps", 1.5}}}}), "'train.steps' must be an integer");
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"modle", {}}}), "unknown key 'modle'");
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"model", {{"d_model", 10}, {"n_heads", 4}}}}), "divisible");
  const auto c = models::RunConfig::from_json({{"model", {{"n_layers", 2}}}, {"train", {{"seed", 5}}}});
  EXPECT_EQ(c.model.n_layers, 2);
  EXPECT_EQ(models::RunConfig::from_json(c.to_json()).to_json(), c.to_json());
  EXPECT_ERROR_WITH(models::RunConfig::from_file("/nonexistent.json"), "/nonexistent.json");
}

TEST(Trainer, TinyLanguageModelLearns) {
  TinyRun run("learns", 150);
  models::Trainer trainer(run.cfg);
  const double before = trainer.evaluate();
  const double after = trainer.fit();
  const auto& h = trainer.history();
  ASSERT_EQ(h.size(), 150u);
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) {
    first += h[i].train_loss / 10;
    last += h[h.size() - 1 - i].train_loss / 10;
  }
  EXPECT_GT(first, 2.5);          // about ln(vocab) at the start
  EXPECT_LT(last, first - 1.2);   // and clearly lower after 150 steps
  EXPECT_LT(after, before - 1.5);  // validation bits per character too
  // metrics.jsonl has one line per step, with val_bpc on the last.
  const std::string metrics = read_file(run.cfg.train.run_dir + "/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 150);
  EXPECT_NE(metrics.rfind("\"val_bpc\""), std::string::npos);

  // Sampling from the checkpoint gives text in the corpus vocabulary, the same for the same seed.
  models::Checkpoint ckpt = models::load_checkpoint(run.cfg.train.run_dir);
  models::TransformerLM model(models::RunConfig::from_json(ckpt.sidecar["config"]).model);
  model.load_state_dict(ckpt.model);
  Generator g1(1), g2(1);
  const auto a = models::sample(model, {0}, {40, 0.8, 5, 32}, g1);
  EXPECT_EQ(a.size(), 41u);
  EXPECT_EQ(a, models::sample(model, {0}, {40, 0.8, 5, 32}, g2));
}

TEST(Trainer, ResumeContinuesBitForBit) {
  TinyRun run("resume", 16);
  run.cfg.model.dropout = 0.1;  // exercises the default generator's state too
  std::vector<double> full;
  {
    models::Trainer t(run.cfg);
    t.fit();
    for (const auto& r : t.history()) full.push_back(r.train_loss);
  }
  fs::remove_all(run.cfg.train.run_dir);
  models::RunConfig first_half = run.cfg;
  first_half.train.stop_after = 7;
  {
    models::Trainer t(first_half);
    t.fit();
    ASSERT_EQ(t.step(), 7);
  }
  models::Trainer resumed(run.cfg, /*resume=*/true);
  ASSERT_EQ(resumed.step(), 7);
  resumed.fit();
  ASSERT_EQ(resumed.history().size(), 9u);
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ(resumed.history()[i].train_loss, full[7 + i]) << "step " << 8 + i;
  // metrics.jsonl holds each step once.
  const std::string metrics = read_file(run.cfg.train.run_dir + "/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 16);
}

TEST(Checkpoint, RoundTripAndCorruption) {
  TinyRun run("ckpt", 2);
  models::Trainer t(run.cfg);
  t.fit();
  const std::string dir = run.cfg.train.run_dir;
  models::Checkpoint c = models::load_checkpoint(dir);
  EXPECT_EQ(c.step, 2);
  for (auto& [name, p] : t.model().named_parameters())
    EXPECT_EQ(c.model.at(name).to_vector<float>(), p.to_vector<float>()) << name;
  EXPECT_TRUE(c.optimizer.count("0.0.exp_avg"));
  EXPECT_EQ(c.sidecar["optimizer"]["step_count"], 2);

  const std::string tensors = dir + "/ckpt-000002.safetensors";
  std::string bytes = read_file(tensors);
  write_file_atomic(tensors, bytes.substr(0, bytes.size() / 2));
  EXPECT_ERROR_WITH(models::load_checkpoint(dir), "load_checkpoint", "truncated");
  bytes[bytes.size() - 3] ^= 0x40;
  write_file_atomic(tensors, bytes);
  EXPECT_ERROR_WITH(models::load_checkpoint(dir), "load_checkpoint", "checksum");
  write_file_atomic(dir + "/ckpt-000002.json", "{\"format\": ");
  EXPECT_ERROR_WITH(models::load_checkpoint(dir), "load_checkpoint", "corrupted");
  EXPECT_ERROR_WITH(models::load_checkpoint(run.dir + "/nothing"), "load_checkpoint");
  // A resumed trainer refuses a checkpoint made with another model.
  fs::remove_all(dir);
  models::Trainer(run.cfg).fit();
  models::RunConfig other = run.cfg;
  other.model.d_model = 64;
  EXPECT_ERROR_WITH(models::Trainer(other, true), "resume", "differs");
}

TEST(Checkpoint, PruningSortsByStepAndKeepsTheNewest) {
  const std::string dir = ::testing::TempDir() + "/ctxpool_prune";
  fs::remove_all(dir);
  models::Checkpoint c;
  c.model["w"] = ones({2});
  for (int64_t step : {999000, 1000000, 1001000}) {
    c.step = step;
    models::save_checkpoint(dir, c, 2);
    EXPECT_EQ(models::load_checkpoint(dir).step, step);
  }
  EXPECT_FALSE(fs::exists(dir + "/ckpt-999000.json"));
  EXPECT_TRUE(fs::exists(dir + "/ckpt-1000000.json"));
  // A new run writing an earlier step into the same directory keeps its own checkpoint.
  c.step = 500;
  models::save_checkpoint(dir, c, 2);
  EXPECT_EQ(models::load_checkpoint(dir).step, 500);
  EXPECT_ERROR_WITH(models::save_checkpoint(dir, c, 0), "keep_last");
  fs::remove_all(dir);
}
