#include "models/grid.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <cstdio>
#include <sstream>

#include <fcntl.h>
#include <cerrno>
#include <cstring>
#include <sys/file.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file_io.h"
#include "models/image_trainer.h"
#include "models/stop_signal.h"
#include "models/trainer.h"

namespace ctxpool::models {

std::string slug(const std::string& name) {
  std::string out;
  for (char ch : name) {
    const bool keep = std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
    if (keep) out += ch;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  CTXPOOL_CHECK(!out.empty(), "grid: config name '", name, "' has no letters or digits");
  return out;
}

Grid Grid::from_json(const nlohmann::json& j, const std::string& base_dir) {
  CTXPOOL_CHECK(j.is_object(), "grid: the top level must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"name", "comment", "base", "base_config", "base_overrides", "seeds", "reference",
                                  "configs", "runs_dir", "results_dir"};
    CTXPOOL_CHECK(std::find(std::begin(known), std::end(known), it.key()) != std::end(known), "grid: unknown key '",
                  it.key(), "'");
  }
  Grid g;
  CTXPOOL_CHECK(j.contains("name") && j["name"].is_string(), "grid: 'name' (a string) is required");
  g.name = j["name"].get<std::string>();
  slug(g.name);
  g.comment = j.value("comment", "");
  CTXPOOL_CHECK(j.contains("base") != j.contains("base_config"), "grid '", g.name,
                "': give exactly one of 'base' (a config object) and 'base_config' (a config file)");
  nlohmann::json base = j.contains("base") ? RunConfig::from_json(j["base"]).to_json()
                                           : RunConfig::from_file(base_dir + j["base_config"].get<std::string>()).to_json();
  if (j.contains("base_overrides")) {  // one shared config file, several budgets: patch it for every row
    CTXPOOL_CHECK(j["base_overrides"].is_object(), "grid '", g.name, "': 'base_overrides' must be a JSON object");
    base.merge_patch(j["base_overrides"]);
  }
  try {
    g.base = RunConfig::from_json(base).to_json();
  } catch (const Error& e) {
    detail::fail("grid '", g.name, "', base_overrides: ", e.what());
  }
  // The grid's seeds, or a config's own.
  auto parse_seeds = [&](const nlohmann::json& seeds, const std::string& where) {
    CTXPOOL_CHECK(seeds.is_array() && !seeds.empty(), "grid '", g.name, "'", where,
                  ": 'seeds' must be a non-empty array of integers");
    std::vector<uint64_t> out;
    for (const auto& s : seeds) {
      CTXPOOL_CHECK(s.is_number_integer() && s.get<int64_t>() >= 0, "grid '", g.name, "'", where, ": seed ", s.dump(),
                    " is not a non-negative integer");
      CTXPOOL_CHECK(std::find(out.begin(), out.end(), s.get<uint64_t>()) == out.end(), "grid '", g.name, "'", where,
                    ": seed ", s.dump(), " is listed twice");
      out.push_back(s.get<uint64_t>());
    }
    return out;
  };
  CTXPOOL_CHECK(j.contains("seeds"), "grid '", g.name, "': 'seeds' must be a non-empty array of integers");
  g.seeds = parse_seeds(j["seeds"], "");
  CTXPOOL_CHECK(j.contains("configs") && j["configs"].is_array() && !j["configs"].empty(), "grid '", g.name,
                "': 'configs' must be a non-empty array");
  std::vector<std::string> slugs;
  for (const auto& c : j["configs"]) {
    CTXPOOL_CHECK(c.is_object() && c.contains("name") && c["name"].is_string(), "grid '", g.name,
                  "': every config needs a 'name', got ", c.dump());
    GridEntry e{c["name"].get<std::string>(), c.value("overrides", nlohmann::json::object()), {}};
    for (auto it = c.begin(); it != c.end(); ++it)
      CTXPOOL_CHECK(it.key() == "name" || it.key() == "overrides" || it.key() == "seeds", "grid '", g.name,
                    "': config '", e.name, "' has an unknown key '", it.key(), "' (expected name, overrides, seeds)");
    if (c.contains("seeds")) e.seeds = parse_seeds(c["seeds"], ", config '" + e.name + "'");
    const std::string s = slug(e.name);
    CTXPOOL_CHECK(std::find(slugs.begin(), slugs.end(), s) == slugs.end(), "grid '", g.name,
                  "': two configs share the directory name '", s, "'");
    slugs.push_back(s);
    g.configs.push_back(std::move(e));
  }
  if (j.contains("reference")) {
    const auto& r = j["reference"];
    g.reference_deep = r.value("deep", "");
    g.reference_shallow = r.value("shallow", "");
    for (const std::string* ref : {&g.reference_deep, &g.reference_shallow}) {
      const bool found = std::any_of(g.configs.begin(), g.configs.end(), [&](const GridEntry& e) { return e.name == *ref; });
      CTXPOOL_CHECK(found, "grid '", g.name, "': reference config '", *ref, "' is not one of the configs");
    }
  }
  g.runs_dir = j.value("runs_dir", "runs/grids/" + g.name);
  g.results_dir = j.value("results_dir", g.results_dir);
  for (size_t c = 0; c < g.configs.size(); ++c) {
    const RunConfig rc = g.run_config(c, g.seeds[0]);  // every override checked now
    CTXPOOL_CHECK(rc.data.is_images() || rc.data.train_fraction + rc.data.validation_fraction < 1.0 - 1e-9, "grid '", g.name, "', config '",
                  g.configs[c].name, "': the data needs a test split (train_fraction + validation_fraction < 1, "
                  "e.g. 0.9 and 0.05)");
  }
  return g;
}

Grid Grid::from_file(const std::string& path) {
  try {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    return from_json(nlohmann::json::parse(read_file(path)), dir.empty() ? "" : dir + "/");
  } catch (const nlohmann::json::exception& e) {
    detail::fail("grid: '", path, "' is not valid JSON: ", e.what());
  }
}

const std::vector<uint64_t>& Grid::seeds_of(size_t config) const {
  const auto& own = configs.at(config).seeds;
  return own.empty() ? seeds : own;
}

std::string Grid::run_dir(size_t config, uint64_t seed) const {
  return runs_dir + "/" + slug(configs.at(config).name) + "/seed-" + std::to_string(seed);
}

RunConfig Grid::run_config(size_t config, uint64_t seed) const {
  nlohmann::json j = base;
  j.merge_patch(configs.at(config).overrides);
  j["train"]["seed"] = seed;
  j["train"]["run_dir"] = run_dir(config, seed);
  j["train"]["keep_best"] = true;
  try {
    return RunConfig::from_json(j);
  } catch (const Error& e) {
    detail::fail("grid '", name, "', config '", configs.at(config).name, "': ", e.what());
  }
}

nlohmann::json RunResult::to_json() const {
  const bool bpc = metric == "bpc";
  return {{"config", config},
          {"seed", seed},
          {"steps", steps},
          {"best_step", best_step},
          {"parameters", parameters},
          {bpc ? "best_val_bpc" : "best_val_acc", best_val},
          {bpc ? "test_bpc" : "test_acc", test},
          {bpc ? "flops_per_token" : "flops_per_image", flops},
          {"ms_per_step", ms_per_step},
          {bpc ? "tokens_per_s" : "images_per_s", items_per_s}};
}

RunResult RunResult::from_json(const nlohmann::json& j) {
  RunResult r;
  r.metric = j.contains("best_val_acc") ? "acc" : "bpc";
  const bool bpc = r.metric == "bpc";
  r.config = j.at("config").get<std::string>();
  r.seed = j.at("seed").get<uint64_t>();
  r.steps = j.at("steps").get<int64_t>();
  r.best_step = j.at("best_step").get<int64_t>();
  r.parameters = j.at("parameters").get<int64_t>();
  r.best_val = j.at(bpc ? "best_val_bpc" : "best_val_acc").get<double>();
  r.test = j.at(bpc ? "test_bpc" : "test_acc").get<double>();
  r.flops = j.at(bpc ? "flops_per_token" : "flops_per_image").get<double>();
  r.ms_per_step = j.at("ms_per_step").get<double>();
  r.items_per_s = j.at(bpc ? "tokens_per_s" : "images_per_s").get<double>();
  return r;
}

namespace {

// The median ms per step over the run's metrics (robust to a few slow steps on a shared machine).
double median_ms_per_step(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/metrics.jsonl"));
  std::vector<double> ms;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("ms_per_step")) ms.push_back(j["ms_per_step"].get<double>());
  }
  if (ms.empty()) return NAN;
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

// The run's log and evaluation lines (not every step), beside the table: small enough to commit,
// enough to plot curves after the run directories are gone.
void save_curve(const Grid& grid, const std::string& run_dir, const std::string& name, int64_t log_interval) {
  std::istringstream in(read_file(run_dir + "/metrics.jsonl"));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    const bool evaluation = j.contains("val_bpc") || j.contains("val_acc") || j.contains("test_acc");
    if (evaluation || j.value("step", int64_t(1)) % log_interval == 0) kept += line + "\n";
  }
  make_directories(grid.results_dir + "/" + grid.name);
  write_file_atomic(grid.results_dir + "/" + grid.name + "/" + name + ".jsonl", kept);
}

std::string hms(double seconds) {
  const long s = static_cast<long>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  return buf;
}

// A base config without the train settings that do not change results (where a run lives, threads,
// logging, checkpointing, what to do on a stop), so that tables stay valid when such settings are
// added or changed.
nlohmann::json comparable(nlohmann::json base) {
  if (base.contains("train") && base["train"].is_object())
    for (const char* key : {"run_dir", "threads", "device", "log_interval", "checkpoint_interval", "stop_after",
                            "skip_nonfinite", "keep_best", "overwrite", "keep_checkpoints"})
      base["train"].erase(key);
  return base;
}

// Runs recorded in an earlier table (<results_dir>/<name>.json) with the same base config and the
// same overrides: they count as finished even when their run directories are gone (runs/ is not
// committed; the table is).
std::map<std::pair<std::string, uint64_t>, RunResult> recorded_runs(const Grid& grid) {
  std::map<std::pair<std::string, uint64_t>, RunResult> out;
  const std::string path = grid.results_dir + "/" + grid.name + ".json";
  if (!file_exists(path)) return out;
  const auto table = nlohmann::json::parse(read_file(path), nullptr, false);
  if (table.is_discarded() || !table.contains("base")) return out;
  // The recorded base read back as a config, so that a key added to RunConfig since the table was
  // written (absent there, at its default here) does not make every recorded run look different.
  nlohmann::json recorded_base;
  try {
    recorded_base = RunConfig::from_json(table["base"]).to_json();
  } catch (const Error&) {
    return out;  // a base this version cannot read is not this grid's
  }
  if (comparable(recorded_base) != comparable(grid.base)) return out;
  for (const auto& row : table.value("configs", nlohmann::json::array())) {
    const auto entry = std::find_if(grid.configs.begin(), grid.configs.end(),
                                    [&](const GridEntry& e) { return e.name == row.value("name", ""); });
    if (entry == grid.configs.end() || row.value("overrides", nlohmann::json()) != entry->overrides) continue;
    for (const auto& run : row.value("runs", nlohmann::json::array())) {
      const RunResult r = RunResult::from_json(run);
      out[{r.config, r.seed}] = r;
    }
  }
  return out;
}

// Every finished run of the grid, in file order: on disk (result.json) or recorded in the table.
std::vector<RunResult> finished_runs(const Grid& grid,
                                     const std::map<std::pair<std::string, uint64_t>, RunResult>& recorded) {
  std::vector<RunResult> out;
  for (size_t c = 0; c < grid.configs.size(); ++c)
    for (uint64_t seed : grid.seeds_of(c)) {
      const std::string result = grid.run_dir(c, seed) + "/result.json";
      if (file_exists(result)) {
        out.push_back(RunResult::from_json(nlohmann::json::parse(read_file(result))));
      } else if (auto it = recorded.find({grid.configs[c].name, seed}); it != recorded.end()) {
        out.push_back(it->second);
      }
    }
  return out;
}

// Trains (or resumes) one language-model run; once finished, tests the weights with the best
// validation bpc once on the whole test split. r.steps < train.steps: it stopped early.
RunResult train_lm_run(const RunConfig& cfg, int64_t& first_step) {
  Trainer trainer(cfg, /*resume=*/true);
  first_step = trainer.step();
  if (trainer.step() < cfg.train.steps) trainer.fit();
  RunResult r;
  r.metric = "bpc";
  r.steps = trainer.step();
  if (r.steps < cfg.train.steps) return r;
  trainer.load_best();
  r.best_step = trainer.best_step();
  r.best_val = trainer.best_val_bpc();
  r.test = trainer.evaluate(nn::data::Split::Test, 0);
  r.parameters = trainer.model().num_parameters();
  r.flops = trainer.model().flops_per_token();
  return r;
}

// The same for an image classifier: test accuracy of the best-validation weights.
RunResult train_image_run(const RunConfig& cfg, int64_t& first_step) {
  ImageTrainer trainer(cfg, /*resume=*/true);
  first_step = trainer.step();
  if (trainer.step() < cfg.train.steps) trainer.fit();
  RunResult r;
  r.metric = "acc";
  r.steps = trainer.step();
  if (r.steps < cfg.train.steps) return r;
  trainer.load_best();
  r.best_step = trainer.best_step();
  r.best_val = trainer.best_val_acc();
  r.test = trainer.test_result().acc;
  if (std::isnan(r.test)) r.test = trainer.evaluate_test().acc;  // finished by an earlier process
  r.parameters = trainer.model().num_parameters();
  r.flops = trainer.model().flops_per_image();
  return r;
}

}  // namespace

FileLock::FileLock(const std::string& path, bool wait) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  CTXPOOL_CHECK(fd_ >= 0, "grid: cannot open the lock file '", path, "': ", std::strerror(errno));
  int rc;
  do {
    rc = ::flock(fd_, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    // Only "held by another process" means skip; any other failure (a filesystem without locks) would
    // otherwise skip every run silently.
    CTXPOOL_CHECK(!wait && err == EWOULDBLOCK, "grid: cannot lock '", path, "': ", std::strerror(err));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

std::vector<RunResult> run_grid(const Grid& grid, const GridOptions& options) {
  struct Job {
    size_t config;
    uint64_t seed;
  };
  std::vector<Job> jobs;
  for (size_t c = 0; c < grid.configs.size(); ++c)
    if (options.only.empty() || grid.configs[c].name.find(options.only) != std::string::npos)
      for (uint64_t s : grid.seeds_of(c)) jobs.push_back({c, s});

  const auto recorded = recorded_runs(grid);
  auto is_recorded = [&](const Job& job) { return recorded.count({grid.configs[job.config].name, job.seed}) > 0; };
  double trained_seconds = 0;
  // For the ETA: the steps of each run not finished at the start (0 for the others), and their sum;
  // a run skipped later (another process has it or finished it) leaves the sum.
  int64_t trained_steps = 0, steps_left = 0;
  std::vector<int64_t> pending_steps(jobs.size(), 0);
  for (size_t n = 0; n < jobs.size(); ++n)
    if (!file_exists(grid.run_dir(jobs[n].config, jobs[n].seed) + "/result.json") && !is_recorded(jobs[n])) {
      pending_steps[n] = grid.run_config(jobs[n].config, jobs[n].seed).train.steps;
      steps_left += pending_steps[n];
    }
  // The table, written under a lock so that two processes cannot interleave reading the finished runs
  // and writing the files (the later writer would drop the other's newest run).
  auto write_table = [&] {
    make_directories(grid.runs_dir);
    const FileLock table_lock(grid.runs_dir + "/table.lock", /*wait=*/true);
    const std::vector<RunResult> results = finished_runs(grid, recorded);
    write_grid_results(grid, results);
    return results;
  };

  for (size_t n = 0; n < jobs.size(); ++n) {
    const Job& job = jobs[n];
    const std::string dir = grid.run_dir(job.config, job.seed);
    const std::string& config_name = grid.configs[job.config].name;
    if (file_exists(dir + "/result.json")) {
      steps_left -= pending_steps[n];  // nonzero: another process finished it meanwhile
      if (!options.quiet) std::printf("[grid %s] run %zu/%zu: %s seed %llu: finished earlier, skipped\n", grid.name.c_str(),
                                      n + 1, jobs.size(), config_name.c_str(), static_cast<unsigned long long>(job.seed));
      continue;
    }
    if (is_recorded(job)) {
      if (!options.quiet) std::printf("[grid %s] run %zu/%zu: %s seed %llu: recorded in the results table, skipped\n",
                                      grid.name.c_str(), n + 1, jobs.size(), config_name.c_str(),
                                      static_cast<unsigned long long>(job.seed));
      continue;
    }
    if (options.table_only) continue;
    if (stop_requested()) break;  // Ctrl-C / SIGTERM during an earlier run
    const RunConfig cfg = grid.run_config(job.config, job.seed);
    make_directories(std::filesystem::path(dir).parent_path().string());
    const FileLock lock(dir + ".lock");
    if (!lock.held() || file_exists(dir + "/result.json")) {  // another process trains it, or just finished it
      steps_left -= pending_steps[n];
      if (!options.quiet)
        std::printf("[grid %s] run %zu/%zu: %s seed %llu: %s, skipped\n", grid.name.c_str(), n + 1, jobs.size(),
                    config_name.c_str(), static_cast<unsigned long long>(job.seed),
                    lock.held() ? "finished by another process" : "being trained by another process");
      continue;
    }
    const std::string eta = trained_steps > 0 ? hms(trained_seconds / trained_steps * steps_left) : "unknown yet";
    if (!options.quiet)
      std::printf("\n[grid %s] run %zu/%zu: %s seed %llu (%lld steps) -> %s | grid ETA %s\n", grid.name.c_str(), n + 1,
                  jobs.size(), config_name.c_str(), static_cast<unsigned long long>(job.seed),
                  static_cast<long long>(cfg.train.steps), dir.c_str(), eta.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t first_step = 0;
    RunResult r = cfg.model.is_image_model() ? train_image_run(cfg, first_step) : train_lm_run(cfg, first_step);
    trained_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    trained_steps += r.steps - first_step;
    steps_left -= r.steps - first_step;
    if (r.steps < cfg.train.steps) {  // stopped early (train.stop_after, a signal): resume next time
      if (!options.quiet) std::printf("[grid %s] %s seed %llu stopped at step %lld; run the grid again to resume it\n",
                                      grid.name.c_str(), config_name.c_str(), static_cast<unsigned long long>(job.seed),
                                      static_cast<long long>(r.steps));
      continue;
    }
    r.config = config_name;
    r.seed = job.seed;
    r.ms_per_step = median_ms_per_step(dir);
    r.items_per_s = static_cast<double>(cfg.train.batch_size * (r.metric == "bpc" ? cfg.model.context : 1)) /
                    (r.ms_per_step / 1000.0);
    save_curve(grid, dir, slug(config_name) + "-seed-" + std::to_string(job.seed), cfg.train.log_interval);
    write_file_atomic(dir + "/result.json", r.to_json().dump(2) + "\n");
    if (!options.quiet)
      std::printf("[grid %s] %s seed %llu: best val %s %.4f (step %lld), test %s %.4f\n", grid.name.c_str(),
                  config_name.c_str(), static_cast<unsigned long long>(job.seed), r.metric.c_str(), r.best_val,
                  static_cast<long long>(r.best_step), r.metric.c_str(), r.test);
    write_table();  // the table grows as runs finish
  }
  return write_table();
}

}  // namespace ctxpool::models
