#include "core/profile.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

namespace ctxpool::profile {
namespace {

std::atomic<int> enabled_flag{-1};  // -1: not read from the environment yet

struct Stat {
  long long calls = 0;
  double ms = 0;
};
using Key = std::tuple<Table, Phase, std::string>;

std::mutex& stats_mutex() {
  static std::mutex m;
  return m;
}
std::map<Key, Stat>& stats() {
  static std::map<Key, Stat> s;
  return s;
}

thread_local Phase phase_now = Phase::Forward;

}  // namespace

bool enabled() {
  int v = enabled_flag.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv("CTXPOOL_PROFILE");
    v = (env != nullptr && env[0] != '\0' && std::string(env) != "0") ? 1 : 0;
    enabled_flag.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

void set_enabled(bool on) { enabled_flag.store(on ? 1 : 0, std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(stats_mutex());
  stats().clear();
}

Phase current_phase() { return phase_now; }
const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::Forward: return "fwd";
    case Phase::Backward: return "bwd";
    case Phase::Optimizer: return "optim";
  }
  return "?";
}
PhaseScope::PhaseScope(Phase phase) : previous_(phase_now) { phase_now = phase; }
PhaseScope::~PhaseScope() { phase_now = previous_; }

void add(Table table, const char* name, double ms) {
  std::lock_guard<std::mutex> lock(stats_mutex());
  Stat& s = stats()[Key{table, phase_now, name}];
  ++s.calls;
  s.ms += ms;
}

void StepProfile::after_step(double step_ms) {
  if (!enabled()) return;
  if (steps_ < 0) {
    reset();
    steps_ = 0;
    return;
  }
  ++steps_;
  ms_ += step_ms;
}

void StepProfile::report(std::ostream& os) const {
  if (!enabled() || steps_ <= 0) return;
  profile::report(os, steps_, ms_ / static_cast<double>(steps_));
}

std::vector<Row> rows() {
  std::vector<Row> out;
  {
    std::lock_guard<std::mutex> lock(stats_mutex());
    for (const auto& [key, s] : stats())
      out.push_back(Row{std::get<0>(key), std::get<1>(key), std::get<2>(key), s.calls, s.ms});
  }
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  return out;
}

namespace {

void print_table(std::ostream& os, Table table, const char* title, const std::vector<Row>& all, double steps,
                 double step_ms) {
  char line[200];
  std::snprintf(line, sizeof line, "%-5s %-40s %10s %10s %7s\n", "phase", title, "calls/step", "ms/step", "share");
  os << line;
  for (const Row& r : all) {
    if (r.table != table) continue;
    const double ms = r.ms / steps;
    std::snprintf(line, sizeof line, "%-5s %-40s %10.1f %10.3f %6.1f%%\n", phase_name(r.phase),
                  r.name.c_str(), static_cast<double>(r.calls) / steps, ms, step_ms > 0 ? 100.0 * ms / step_ms : 0.0);
    os << line;
  }
}

}  // namespace

void report(std::ostream& os, long long steps, double step_ms) {
  const std::vector<Row> all = rows();
  const double n = static_cast<double>(std::max<long long>(steps, 1));
  double phase_ms[3] = {0, 0, 0};
  for (const Row& r : all)
    if (r.table == Table::Kernels) phase_ms[static_cast<int>(r.phase)] += r.ms / n;
  const double outside = step_ms - phase_ms[0] - phase_ms[1] - phase_ms[2];

  char line[200];
  std::snprintf(line, sizeof line, "profile: %lld steps, %.2f ms/step\n", steps, step_ms);
  os << line;
  print_table(os, Table::Kernels, "kernel calls, by op", all, n, step_ms);
  std::snprintf(line, sizeof line,
                "kernels: forward %.3f, backward %.3f, optimizer %.3f ms/step; outside kernels %.3f ms/step "
                "(%.1f%%): allocation, zero-filling, graph bookkeeping, host loops\n\n",
                phase_ms[0], phase_ms[1], phase_ms[2], outside, step_ms > 0 ? 100.0 * outside / step_ms : 0.0);
  os << line;
  print_table(os, Table::BackwardNodes, "backward nodes (inclusive)", all, n, step_ms);
}

}  // namespace ctxpool::profile
