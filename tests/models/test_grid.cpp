// The experiment runner on a smoke grid (2 configs, 1 seed, 30 steps of a tiny model on a synthetic
// corpus): an interrupted grid resumes to the same numbers as an uninterrupted one, finished runs
// are skipped, and the table is written (markdown and JSON), keeping a hand-written conclusion.
#include <filesystem>

#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_images.h"
#include "helpers/tiny_run.h"
#include "models/grid.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using nlohmann::json;

namespace {

json smoke_grid(const TinyRun& run, const std::string& runs) {
  json base = run.cfg.to_json();
  base["data"]["validation_fraction"] = 0.05;  // 90/5/5: the grid needs a test split
  base["model"]["d_model"] = 16;
  base["model"]["d_mlp"] = 32;
  base["train"]["eval_interval"] = 10;
  base["train"]["max_eval_windows"] = 8;
  base["train"]["checkpoint_interval"] = 10;
  return {{"name", "smoke"},
          {"base", base},
          {"seeds", {5}},
          {"reference", {{"deep", "plain"}, {"shallow", "plain"}}},
          {"configs", {{{"name", "plain"}},
                       {{"name", "cp K=4"}, {"overrides", {{"model", {{"context_pool", {{"enabled", true}, {"window", 4}}}}}}}}}},
          {"runs_dir", run.dir + "/" + runs},
          {"results_dir", run.dir + "/results"}};
}

}  // namespace

TEST(Grid, ResumesSkipsFinishedRunsAndWritesTheTable) {
  TinyRun run("grid", 30);
  models::GridOptions quiet;
  quiet.quiet = true;

  // Uninterrupted, for reference.
  // (its own table: runs recorded in a table count as finished)
  json straight_grid = smoke_grid(run, "straight");
  straight_grid["results_dir"] = run.dir + "/results_straight";
  const auto straight = models::run_grid(models::Grid::from_json(straight_grid), quiet);
  ASSERT_EQ(straight.size(), 2u);

  // Interrupted after 12 steps of each run, then resumed.
  json g = smoke_grid(run, "runs");
  g["base"]["train"]["stop_after"] = 12;
  EXPECT_TRUE(models::run_grid(models::Grid::from_json(g), quiet).empty());
  const models::Grid grid = models::Grid::from_json(smoke_grid(run, "runs"));
  EXPECT_TRUE(file_exists(grid.run_dir(0, 5) + "/latest"));
  EXPECT_FALSE(file_exists(grid.run_dir(0, 5) + "/result.json"));
  EXPECT_EQ(grid.run_dir(1, 5), run.dir + "/runs/cp-K-4/seed-5");
  const auto resumed = models::run_grid(grid, quiet);
  ASSERT_EQ(resumed.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(resumed[i].steps, 30);
    EXPECT_TRUE(resumed[i].best_step == 10 || resumed[i].best_step == 20 || resumed[i].best_step == 30);
    EXPECT_EQ(resumed[i].best_val, straight[i].best_val) << resumed[i].config;  // bit for bit
    EXPECT_EQ(resumed[i].test, straight[i].test) << resumed[i].config;
    EXPECT_GT(resumed[i].test, 0.5);
    EXPECT_LT(resumed[i].test, 8.0);
  }
  EXPECT_GT(resumed[1].parameters, resumed[0].parameters);  // the predictor
  // The curves (log and evaluation steps only) are kept beside the table.
  const std::string curve = read_file(run.dir + "/results/smoke/cp-K-4-seed-5.jsonl");
  EXPECT_NE(curve.find("\"val_bpc\""), std::string::npos);
  EXPECT_NE(curve.find("cp_support/0"), std::string::npos);

  // The table, with a conclusion written by hand that a rewrite keeps.
  const std::string md_path = run.dir + "/results/smoke.md";
  std::string md = read_file(md_path);
  EXPECT_NE(md.find("| plain | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| cp K=4 | 2 |"), std::string::npos) << md;
  const size_t a = md.find("<!-- conclusion -->");
  ASSERT_NE(a, std::string::npos);
  md.replace(a, std::string("<!-- conclusion -->").size(), "<!-- conclusion -->\nContextPool wins.");
  write_file_atomic(md_path, md);
  const auto table = json::parse(read_file(run.dir + "/results/smoke.json"));
  ASSERT_EQ(table["configs"].size(), 2u);
  EXPECT_EQ(table["configs"][1]["runs"][0]["best_val_bpc"].get<double>(), resumed[1].best_val);

  // A third pass trains nothing (finished runs are skipped) and keeps the conclusion.
  const auto mtime = std::filesystem::last_write_time(grid.run_dir(0, 5) + "/result.json");
  const auto again = models::run_grid(grid, quiet);
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(std::filesystem::last_write_time(grid.run_dir(0, 5) + "/result.json"), mtime);
  EXPECT_NE(read_file(md_path).find("ContextPool wins."), std::string::npos);

  // With the run directories gone (another session), the table still records the finished runs ...
  std::filesystem::remove_all(run.dir + "/runs");
  const auto from_table = models::run_grid(grid, quiet);
  ASSERT_EQ(from_table.size(), 2u);
  EXPECT_EQ(from_table[1].test, resumed[1].test);
  EXPECT_FALSE(file_exists(grid.run_dir(0, 5) + "/latest"));  // nothing was retrained
  // A table written before a config key existed (here train.allow_tf32, at its default) still counts.
  json older = json::parse(read_file(run.dir + "/results/smoke.json"));
  ASSERT_TRUE(older["base"]["train"].contains("allow_tf32"));
  older["base"]["train"].erase("allow_tf32");
  write_file_atomic(run.dir + "/results/smoke.json", older.dump());
  EXPECT_EQ(models::run_grid(grid, quiet).size(), 2u);
  EXPECT_FALSE(file_exists(grid.run_dir(0, 5) + "/latest"));
  // ... unless a config's overrides changed: that config runs again.
  json changed = smoke_grid(run, "runs");
  changed["configs"][1]["overrides"]["model"]["context_pool"]["window"] = 2;
  const auto rerun = models::run_grid(models::Grid::from_json(changed), quiet);
  ASSERT_EQ(rerun.size(), 2u);
  EXPECT_FALSE(file_exists(grid.run_dir(0, 5) + "/latest"));
  EXPECT_TRUE(file_exists(grid.run_dir(1, 5) + "/result.json"));
}

// Two processes on one grid (one per core): a run another process holds the lock of is skipped, not
// trained twice; a process that trains a subset (--only) still writes the table of every finished run.
TEST(Grid, ProcessesShareAGridAndSubsetsKeepTheWholeTable) {
  TinyRun run("grid_shared", 30);
  models::GridOptions quiet;
  quiet.quiet = true;
  const models::Grid grid = models::Grid::from_json(smoke_grid(run, "runs"));
  make_directories(run.dir + "/runs/plain");
  {
    const models::FileLock other(grid.run_dir(0, 5) + ".lock");  // "another process" trains plain
    ASSERT_TRUE(other.held());
    EXPECT_FALSE(models::FileLock(grid.run_dir(0, 5) + ".lock").held());  // a second holder is refused
    const auto results = models::run_grid(grid, quiet);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].config, "cp K=4");
    EXPECT_FALSE(file_exists(grid.run_dir(0, 5) + "/latest"));  // not touched
  }
  EXPECT_TRUE(models::FileLock(grid.run_dir(0, 5) + ".lock").held());  // released with its holder

  // Training only "plain" now: the table still has the cp row that the first pass trained.
  models::GridOptions only_plain = quiet;
  only_plain.only = "plain";
  const auto results = models::run_grid(grid, only_plain);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].config, "plain");  // file order
  EXPECT_EQ(results[1].config, "cp K=4");
  const auto table = json::parse(read_file(run.dir + "/results/smoke.json"));
  ASSERT_EQ(table["configs"].size(), 2u);
  EXPECT_EQ(table["configs"][0]["runs"].size(), 1u);
  EXPECT_EQ(table["configs"][1]["runs"].size(), 1u);
}

// A config may list its own seeds (an ablation that comes close to a main row gets more seeds).
TEST(Grid, AConfigCanRunWithItsOwnSeeds) {
  TinyRun run("grid_own_seeds", 30);
  models::GridOptions quiet;
  quiet.quiet = true;
  json g = smoke_grid(run, "runs");
  g["configs"][1]["seeds"] = {5, 6};
  const models::Grid grid = models::Grid::from_json(g);
  EXPECT_EQ(grid.seeds_of(0), std::vector<uint64_t>({5}));
  EXPECT_EQ(grid.seeds_of(1), std::vector<uint64_t>({5, 6}));
  const auto results = models::run_grid(grid, quiet);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[2].config, "cp K=4");
  EXPECT_EQ(results[2].seed, 6u);
  EXPECT_NE(results[2].best_val, results[1].best_val);  // another seed, another run
  EXPECT_NE(read_file(run.dir + "/results/smoke.md").find("| 2/2 |"), std::string::npos);
  const auto table = json::parse(read_file(run.dir + "/results/smoke.json"));
  EXPECT_EQ(table["configs"][1]["seeds"], json({5, 6}));
  EXPECT_EQ(table["configs"][1]["runs"].size(), 2u);

  g["configs"][1]["seeds"] = {5, 5};
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "config 'cp K=4'", "seed 5 is listed twice");
  g["configs"][1]["seeds"] = json::array();
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "config 'cp K=4'", "non-empty array");
}

TEST(Grid, BadGridsAreClearErrors) {
  TinyRun run("grid_bad", 30);
  json g = smoke_grid(run, "runs");
  g["sedes"] = {1};
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "grid", "unknown key 'sedes'");
  g = smoke_grid(run, "runs");
  g["configs"][1]["overrides"]["model"]["n_layer"] = 3;
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "cp K=4", "unknown key 'model.n_layer'");
  g = smoke_grid(run, "runs");
  g["configs"][1]["name"] = "plain!";
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "share the directory name 'plain'");
  g = smoke_grid(run, "runs");
  g["reference"]["deep"] = "plain L=8";
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "reference config 'plain L=8'");
  g = smoke_grid(run, "runs");
  g["base"]["data"]["validation_fraction"] = 0.1;
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "test split");
  g = smoke_grid(run, "runs");
  g["seeds"] = json::array();
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "seeds");
}

// base_overrides patches the base for every config (one config file, several budgets), before the
// config's own overrides, and is checked like any config.
TEST(Grid, BaseOverridesPatchEveryConfig) {
  TinyRun run("grid_base_overrides", 30);
  json g = smoke_grid(run, "runs");
  g["base_overrides"] = {{"train", {{"steps", 60}}}, {"model", {{"n_layers", 3}}}};
  g["configs"][1]["overrides"]["model"]["n_layers"] = 1;
  const models::Grid grid = models::Grid::from_json(g);
  EXPECT_EQ(grid.base["train"]["steps"], 60);
  EXPECT_EQ(grid.run_config(0, 5).train.steps, 60);
  EXPECT_EQ(grid.run_config(0, 5).model.n_layers, 3);
  EXPECT_EQ(grid.run_config(1, 5).model.n_layers, 1);  // the config's override wins
  EXPECT_EQ(grid.run_config(1, 5).train.steps, 60);
  g["base_overrides"] = {{"train", {{"stepz", 60}}}};
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "base_overrides", "unknown key 'train.stepz'");
  g["base_overrides"] = json::array();
  EXPECT_ERROR_WITH(models::Grid::from_json(g), "'base_overrides' must be a JSON object");
}

// Every shipped grid loads: its base config and every override are valid.
TEST(Grid, ExampleGridsLoad) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CTXPOOL_EXAMPLES_DIR "/grids")) {
    if (entry.path().extension() != ".json") continue;
    const models::Grid grid = models::Grid::from_file(entry.path().string());
    EXPECT_FALSE(grid.configs.empty()) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 2);
}

// An image grid: the same runner trains image classifiers and reports accuracy per image.
TEST(Grid, ImageClassifiersGiveAnAccuracyTable) {
  TinyRun run("image_grid", 1);
  const std::string data = run.dir + "/images";
  write_idx_dataset(data, 600, 200);
  json base = tiny_image_config("convnet", run.dir + "/unused", 40).to_json();
  base["data"]["path"] = data;
  base["data"]["validation_size"] = 100;
  base["train"]["eval_interval"] = 20;
  const json g = {{"name", "image_smoke"},
                  {"base", base},
                  {"seeds", {1}},
                  {"configs", {{{"name", "max pool"}},
                               {{"name", "cp pool"}, {"overrides", {{"model", {{"image", {{"downsample", "context_pool"}}}}}}}}}},
                  {"runs_dir", run.dir + "/runs"},
                  {"results_dir", run.dir + "/results"}};
  models::GridOptions quiet;
  quiet.quiet = true;
  const auto results = models::run_grid(models::Grid::from_json(g), quiet);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.metric, "acc");
    EXPECT_GT(r.best_val, 0.3) << r.config;  // chance is 0.1
    EXPECT_GT(r.test, 0.3) << r.config;
    EXPECT_GT(r.flops, 0.0);
    EXPECT_EQ(models::RunResult::from_json(r.to_json()).to_json(), r.to_json());
  }
  const json table = json::parse(read_file(run.dir + "/results/image_smoke.json"));
  EXPECT_EQ(table["configs"][1]["runs"][0]["test_acc"].get<double>(), results[1].test);
  EXPECT_TRUE(table["configs"][0].contains("flops_per_image"));
  const std::string md = read_file(run.dir + "/results/image_smoke.md");
  EXPECT_NE(md.find("best val accuracy"), std::string::npos);
  EXPECT_NE(md.find("img/s"), std::string::npos);
  // The curves keep the evaluation lines, the test accuracy included.
  const std::string curve = read_file(run.dir + "/results/image_smoke/cp-pool-seed-1.jsonl");
  EXPECT_NE(curve.find("\"val_acc\""), std::string::npos);
  EXPECT_NE(curve.find("\"test_acc\""), std::string::npos);
}
