// Experiment grids: named config overrides x seeds, trained one after another on the same data and
// budget, resumable, summarised as a results table (markdown + JSON). Language models and image
// classifiers alike (a grid's base config says which).
//
// A grid file (examples/grids/*.json):
//   {"name": "contextpool_lm", "comment": "...",
//    "base_config": "../configs/lm_linux_doc_base.json",   (relative to the grid file; or "base": {...})
//    "base_overrides": {"train": {"steps": 3000}},          (optional: patches the base for every config)
//    "seeds": [1337, 2, 3],
//    "reference": {"deep": "plain L=4", "shallow": "plain L=2"},  (optional: the depth gap)
//    "configs": [{"name": "plain L=4", "overrides": {"model": {"n_layers": 4}}}, ...]}
//   (a config may list its own "seeds", which replace the grid's for that row)
// Overrides are JSON merge patches of the base config. Run r of config c with seed s lives in
// <runs_dir>/<c's slug>/seed-<s>; a finished run holds result.json and is skipped, a half-done one
// resumes from its latest checkpoint. A run recorded in the results table (same base config, same
// overrides) counts as finished too, so a grid can span machines and sessions whose run directories
// are gone. Each finished run's log and evaluation lines are copied to
// <results_dir>/<name>/<slug>-seed-<s>.jsonl (for plots; the run directories are not committed).
//
// Several processes may work through one grid at once (one per core): a process holds a lock on
// <run_dir>.lock while it trains that run, and the others skip it. The table always lists every
// finished run of every config, whichever process (or --only subset) trained it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace ctxpool::models {

struct GridEntry {
  std::string name;
  nlohmann::json overrides = nlohmann::json::object();
  std::vector<uint64_t> seeds;  // its own seeds (an ablation close to a main row gets more); empty: the grid's
};

struct Grid {
  std::string name, comment;
  nlohmann::json base;  // a complete run config
  std::vector<uint64_t> seeds;
  std::vector<GridEntry> configs;
  std::string reference_deep, reference_shallow;  // config names; both empty when not given
  std::string runs_dir;                           // default runs/grids/<name>
  std::string results_dir = "docs/results";

  // base_config is relative to base_dir (from_file: the grid file's directory).
  static Grid from_json(const nlohmann::json& j, const std::string& base_dir = "");
  static Grid from_file(const std::string& path);

  // The run config of entry `config` with `seed`: base + overrides, train.seed, train.run_dir,
  // train.keep_best on. Checked like any config (an unknown key is an error naming it).
  RunConfig run_config(size_t config, uint64_t seed) const;
  std::string run_dir(size_t config, uint64_t seed) const;
  // The seeds config `config` runs with: its own, else the grid's.
  const std::vector<uint64_t>& seeds_of(size_t config) const;
};

// What one finished run contributes to the table (its result.json). Language models are measured in
// bits per character (lower is better) per token, image classifiers in accuracy (higher is better)
// per image; the JSON keys say which (best_val_bpc, test_bpc, flops_per_token, tokens_per_s, or
// best_val_acc, test_acc, flops_per_image, images_per_s).
struct RunResult {
  std::string config;
  uint64_t seed = 0;
  int64_t steps = 0, best_step = 0, parameters = 0;
  std::string metric = "bpc";  // "bpc" or "acc"
  double best_val = 0;         // the best validation bpc / accuracy
  double test = 0;             // the test bpc / accuracy of the checkpoint with the best validation
  double flops = 0;            // forward FLOPs per token / per image
  double ms_per_step = 0;
  double items_per_s = 0;      // tokens / images per second

  bool higher_is_better() const { return metric == "acc"; }
  nlohmann::json to_json() const;
  static RunResult from_json(const nlohmann::json& j);
};

// An exclusive lock on a file (POSIX flock), released with the object. Without `wait`, held() says
// whether this process got it (false: another process holds it); with `wait`, it blocks until it
// does. The system releases it when the process ends, however it ends, so a crash leaves no stale
// lock. A filesystem that cannot lock is an error, not "held elsewhere".
class FileLock {
 public:
  explicit FileLock(const std::string& path, bool wait = false);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct GridOptions {
  std::string only;        // train only the configs whose name contains this (empty: all)
  bool table_only = false; // train nothing: collect the finished runs and rewrite the table
  bool quiet = false;
};

// Trains every (config, seed) not yet finished and not locked by another process, in file order
// (seeds inner), then writes the table. Returns the results of all finished runs of the grid, in file
// order (the ones trained now, the ones found on disk and the ones recorded in the table).
std::vector<RunResult> run_grid(const Grid& grid, const GridOptions& options = {});

// <results_dir>/<name>.md and <name>.json: per config, mean +- std over seeds of the best validation
// bpc (accuracy) and of the test bpc (accuracy) of the best-validation checkpoint, parameters, FLOPs
// per token (image), ms per step, tokens (images) per second; with a reference pair, the share of the
// shallow -> deep gap each config recovers.
void write_grid_results(const Grid& grid, const std::vector<RunResult>& results);

// "plain L=4" -> "plain-L-4": a name usable as a directory.
std::string slug(const std::string& name);

}  // namespace ctxpool::models
