// The trainers when things go wrong: a stop by Ctrl-C / SIGTERM loses nothing and resumes exactly,
// a non-finite loss stops the run before it touches the weights (or is skipped, if asked), and
// hyper-parameters no run can use are refused before training starts.
#include <csignal>
#include <filesystem>
#include <thread>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_images.h"
#include "helpers/tiny_run.h"
#include "models/checkpoint.h"
#include "models/stop_signal.h"
#include "models/convnet.h"
#include "models/progress.h"
#include "models/train_utils.h"
#include "models/trainer.h"
#include "ops/ops.h"

using namespace ctxpool;
using namespace ctxpool::testing;
namespace fs = std::filesystem;

namespace {

int64_t lines(const std::string& path) {
  if (!file_exists(path)) return 0;
  const std::string s = read_file(path);
  return std::count(s.begin(), s.end(), '\n');
}

void custom_handler(int) {}

}  // namespace

TEST(StopSignal, TheGuardCatchesSignalsAndRestoresTheOldHandlers) {
  models::clear_stop_request();
  auto* before = std::signal(SIGTERM, custom_handler);
  {
    models::StopSignalGuard guard;
    std::raise(SIGTERM);  // would end the process without the guard
    EXPECT_TRUE(models::stop_requested());
  }
  EXPECT_EQ(std::signal(SIGTERM, before), &custom_handler);  // the guard put ours back
  models::clear_stop_request();
  EXPECT_FALSE(models::stop_requested());
}

// A stop request mid-run (what the handler does) ends the run after the current step with a
// checkpoint; resuming gives the same weights as a run that never stopped.
TEST(StopSignal, AStoppedRunCheckpointsAndResumesExactly) {
  TinyRun run("stop", 30);
  std::map<std::string, Tensor> straight;
  {
    models::Trainer t(run.cfg);
    t.fit();
    straight = t.model().state_dict();
  }
  fs::remove_all(run.cfg.train.run_dir);
  models::clear_stop_request();
  const std::string metrics = run.cfg.train.run_dir + "/metrics.jsonl";
  int64_t stopped_at = 0;
  {
    models::Trainer t(run.cfg);
    std::thread stopper([&] {
      while (lines(metrics) < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      models::request_stop();
    });
    t.fit();
    stopper.join();
    stopped_at = t.step();
    EXPECT_GE(stopped_at, 5);
    EXPECT_LT(stopped_at, 30);
    EXPECT_EQ(models::load_checkpoint(run.cfg.train.run_dir).step, stopped_at);  // nothing lost
  }
  models::clear_stop_request();
  models::Trainer resumed(run.cfg, true);
  EXPECT_EQ(resumed.step(), stopped_at);
  resumed.fit();
  EXPECT_EQ(resumed.step(), 30);
  for (const auto& [name, t] : resumed.model().state_dict())
    EXPECT_EQ(ops::max(ops::abs(ops::sub(t, straight.at(name)))).item(), 0.0) << name;
  EXPECT_EQ(lines(metrics), 30);
}

TEST(NonFinite, StopsBeforeTouchingTheWeightsOrSkipsIfAsked) {
  models::clear_stop_request();
  TinyRun run("nonfinite", 6);
  run.cfg.train.checkpoint_interval = 2;
  {
    models::Trainer t(run.cfg);
    t.fit();  // a good run first: checkpoints at steps 2, 4, 6
  }
  // Poison the head: every later loss is NaN.
  run.cfg.train.steps = 10;
  models::Trainer t(run.cfg, true);
  {
    autograd::NoGradGuard no_grad;
    t.model().head->bias.fill_(NAN);
  }
  EXPECT_ERROR_WITH(t.fit(), "step 7 gave a non-finite loss", "ckpt-000006", "skip_nonfinite");
  EXPECT_EQ(models::load_checkpoint(run.cfg.train.run_dir).step, 6);  // the last good one is kept
  // Skipping: the steps go by, no weight changes.
  run.cfg.train.skip_nonfinite = true;
  models::Trainer skipper(run.cfg, true);
  {
    autograd::NoGradGuard no_grad;
    skipper.model().head->bias.fill_(NAN);
  }
  const Tensor w = skipper.model().head->weight.clone();
  // Every step is skipped, so no weight changes; the poisoned bias is still NaN, so the checkpoint
  // due after step 8 is refused rather than written over a good one.
  EXPECT_ERROR_WITH(skipper.fit(), "after step 8", "no longer finite", "no checkpoint written", "ckpt-000006.json'");
  EXPECT_EQ(skipper.step(), 8);
  EXPECT_EQ(ops::max(ops::abs(ops::sub(w, skipper.model().head->weight))).item(), 0.0);
  EXPECT_EQ(models::load_checkpoint(run.cfg.train.run_dir).step, 6);
}

// An update can overflow the weights while the loss and gradient norm were finite: the checkpoint
// is refused, so "the last good checkpoint" is always good.
TEST(NonFinite, CheckpointsNeverHoldNonFiniteWeights) {
  const Tensor ok = ones({2, 3}), bad = from_vector(std::vector<float>{1.f, INFINITY}, {2}, kFloat32);
  models::check_finite_parameters({ok}, 3, "/nonexistent");
  EXPECT_ERROR_WITH(models::check_finite_parameters({ok, bad}, 3, "/nonexistent"), "after step 3", "[2]",
                    "none yet");
}

// Every sidecar must carry its own checksum: without it an edited step would pass.
TEST(Checkpoint, SidecarWithoutItsChecksumIsRefused) {
  models::clear_stop_request();
  TinyRun run("sidecar_checksum", 2);
  models::Trainer(run.cfg).fit();
  const std::string sidecar = run.cfg.train.run_dir + "/ckpt-000002.json";
  auto j = nlohmann::json::parse(read_file(sidecar));
  j.erase("sidecar_fnv1a64");
  j["step"] = 1;
  write_file_atomic(sidecar, j.dump());
  EXPECT_ERROR_WITH(models::load_checkpoint(run.cfg.train.run_dir), "no checksum of itself", "refusing");
}

TEST(NonFinite, TheImageTrainerStopsToo) {
  models::clear_stop_request();
  const std::string dir = ::testing::TempDir() + "/ctxpool_img_nonfinite_" + std::to_string(::getpid());
  fs::remove_all(dir);
  models::ImageTrainer t(tiny_image_config("convnet", dir, 5), block_data(64));
  auto* conv = static_cast<nn::Conv2d*>((*static_cast<models::ConvNet&>(t.model()).convs)[0].get());
  {
    autograd::NoGradGuard no_grad;
    conv->weight.fill_(INFINITY);
  }
  EXPECT_ERROR_WITH(t.fit(), "step 1 gave a non-finite", "none yet");
}

TEST(Config, HyperparametersNoRunCanUseAreRefused) {
  using models::RunConfig;
  EXPECT_ERROR_WITH(RunConfig::from_json({{"optim", {{"lr", 0.0}}}}), "'optim.lr' must be positive");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"optim", {{"lr", -1e-3}}}}), "'optim.lr' must be positive");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"optim", {{"beta2", 1.0}}}}), "'optim.beta2' must be in [0, 1)");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"optim", {{"eps", 0.0}}}}), "'optim.eps'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"schedule", {{"min_lr_ratio", 1.5}}}}), "'schedule.min_lr_ratio'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"schedule", {{"warmup_steps", -1}}}}), "'schedule.warmup_steps'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"train", {{"eval_interval", -5}}}}), "'train.eval_interval'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"init_std", 0.0}}}}), "'model.init_std'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"dropout", 1.0}}}}), "'model.dropout'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"model", {{"context", 0}}}}), "'model.context'");
  EXPECT_ERROR_WITH(RunConfig::from_json({{"data", {{"train_fraction", 0.9}, {"validation_fraction", 0.2}}}}),
                    "at most 1");
}

TEST(BadInput, DirectoriesAndDamagedFilesAreClearErrors) {
  TinyRun run("bad_input", 2);
  EXPECT_ERROR_WITH(models::RunConfig::from_file(run.dir), "is a directory, expected a file");
  models::RunConfig c = run.cfg;
  c.data.path = run.dir;
  EXPECT_ERROR_WITH(models::Trainer{c}, "is a directory");
  make_directories(run.dir + "/damaged");
  write_file_atomic(run.dir + "/damaged/latest", "");
  EXPECT_ERROR_WITH(models::load_checkpoint(run.dir + "/damaged"), "'latest' file", "empty or damaged");
  write_file_atomic(run.dir + "/damaged/latest", "../../etc/passwd\n");
  EXPECT_ERROR_WITH(models::load_checkpoint(run.dir + "/damaged"), "empty or damaged");
  // A new run refuses a directory that holds one; --overwrite replaces it.
  models::Trainer(run.cfg).fit();
  EXPECT_ERROR_WITH(models::Trainer{run.cfg}, "already holds a run", "--resume", "--overwrite");
  write_file_atomic(run.cfg.train.run_dir + "/metrics.jsonl.tmp.123", "half a save");
  models::RunConfig again = run.cfg;
  again.train.overwrite = true;
  models::Trainer fresh(again);
  EXPECT_EQ(fresh.step(), 0);
  EXPECT_FALSE(file_exists(run.cfg.train.run_dir + "/latest"));
  EXPECT_FALSE(file_exists(run.cfg.train.run_dir + "/metrics.jsonl.tmp.123"));
}

TEST(Checkpoint, RetentionIsAConfigOption) {
  models::clear_stop_request();
  TinyRun run("retention", 8);
  run.cfg.train.checkpoint_interval = 2;
  run.cfg.train.keep_checkpoints = 3;
  models::Trainer(run.cfg).fit();
  int count = 0;
  for (const auto& e : fs::directory_iterator(run.cfg.train.run_dir))
    if (e.path().extension() == ".safetensors" && e.path().filename().string().rfind("ckpt-", 0) == 0) ++count;
  EXPECT_EQ(count, 3);  // steps 4, 6, 8
  EXPECT_TRUE(file_exists(run.cfg.train.run_dir + "/ckpt-000004.json"));
  EXPECT_ERROR_WITH(models::RunConfig::from_json({{"train", {{"keep_checkpoints", 0}}}}), "'train.keep_checkpoints'");
}

// Relative data paths: the working directory first, then beside the config file, then the working
// directory's parents; an error lists every place tried.
TEST(Config, RelativeDataPathsResolveBesideTheConfigFile) {
  const fs::path dir = fs::temp_directory_path() / "ctxpool_config_paths";
  fs::remove_all(dir);
  fs::create_directories(dir / "configs" / "corpora");
  write_file_atomic((dir / "configs" / "corpora" / "tiny.txt").string(), "hello world, hello world\n");
  write_file_atomic((dir / "configs" / "run.json").string(),
                    R"({"data": {"path": "corpora/tiny.txt"}, "train": {"steps": 1}})");
  const models::RunConfig cfg = models::RunConfig::from_file((dir / "configs" / "run.json").string());
  EXPECT_EQ(cfg.data.base_dir, (dir / "configs").string());
  EXPECT_FALSE(cfg.to_json()["data"].contains("base_dir"));  // where it came from is not saved
  EXPECT_EQ(models::resolve_data_path(cfg.data.path, cfg.data.base_dir),
            (dir / "configs" / "corpora" / "tiny.txt").string());
  EXPECT_ERROR_WITH(models::resolve_data_path("corpora/missing.txt", cfg.data.base_dir),
                    "(beside the config)");
  fs::remove_all(dir);
}

TEST(Progress, LogLinesCarryElapsedTimeAndEta) {
  EXPECT_EQ(models::elapsed_and_eta(90.0, 30, 60), "elapsed 1:30, ETA 3:00");
  EXPECT_EQ(models::elapsed_and_eta(0.0, 0, 10), "elapsed 0:00, ETA ?");
  EXPECT_EQ(models::elapsed_and_eta(3600.0, 1, 1), "elapsed 1:00:00, ETA 1:00:00");
}

// A run that could never be evaluated is refused before its first step: here the validation split
// (10% of 40,000 bytes) holds no window of context + 1 = 5,001 bytes.
TEST(BadInput, ValidationSplitTooShortIsRefusedBeforeTraining) {
  TinyRun run("short_validation", 2);
  run.cfg.model.context = 5000;
  EXPECT_ERROR_WITH(models::Trainer{run.cfg}, "validation split", "fewer than context + 1 = 5001",
                    "model.context");
  EXPECT_FALSE(file_exists(run.cfg.train.run_dir + "/latest"));
}
