// A terminal progress bar with rate and ETA (only when stderr is a terminal; silent otherwise).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ctxpool::models {

class ProgressBar {
 public:
  // show = false: never draws (e.g. on every process but rank 0 of a distributed run).
  ProgressBar(int64_t total, int64_t start = 0, bool show = true);
  // Redraws the bar at `done` steps with a free-form status ("loss 1.234").
  void update(int64_t done, const std::string& status);
  void finish();
  static bool enabled();

 private:
  int64_t total_, start_;
  bool show_;
  std::chrono::steady_clock::time_point t0_;
  bool drawn_ = false;
};

std::string format_duration(double seconds);  // "1:05:03" or "4:09"

// "elapsed 4:09, ETA 12:30" for log lines (which, unlike the bar, also reach a pipe or a file):
// `done` of this run's steps took `elapsed_s`; `remaining` steps are left.
std::string elapsed_and_eta(double elapsed_s, int64_t done, int64_t remaining);

}  // namespace ctxpool::models
