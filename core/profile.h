// A per-op time profile of training steps, switched on with CTXPOOL_PROFILE=1 (or set_enabled).
//
// Two views, both accumulated while profiling is on:
//   - kernels: every call made through the kernel table (ops/kernels.h), keyed by the op that made it
//     and the phase it ran in (forward, backward, optimizer step), with its wall time;
//   - backward nodes: every autograd node the engine runs, with its wall time (inclusive: the kernels
//     it calls, the allocations and copies around them).
// report() prints both per step, with each row's share of the measured step time; what no kernel
// accounts for (allocation, zero-filling outside the table, graph bookkeeping, the optimizer's host
// loops) is the "outside kernels" row.
//
// On CUDA, kernels run asynchronously: the times are host-side launch times, not device times.
// When profiling is off each timed call costs one branch on a cached flag.
#pragma once
#include <chrono>
#include <ostream>
#include <string>
#include <vector>

namespace ctxpool::profile {

bool enabled();  // CTXPOOL_PROFILE from the environment, unless set_enabled() was called
void set_enabled(bool on);

// Forget everything accumulated (e.g. after warm-up steps).
void reset();

// Profiling off for a scope (e.g. evaluation inside a profiled training loop), restored after.
class Pause {
 public:
  Pause() : was_(enabled()) { set_enabled(false); }
  ~Pause() { set_enabled(was_); }
  Pause(const Pause&) = delete;
  Pause& operator=(const Pause&) = delete;

 private:
  bool was_;
};

// The profile of a training loop: the first step is warm-up (forgotten); report() prints the rest,
// per step, against their measured time. Does nothing when profiling is off.
class StepProfile {
 public:
  void after_step(double step_ms);
  void report(std::ostream& os) const;

 private:
  long long steps_ = -1;  // -1: the warm-up step has not run yet
  double ms_ = 0;
};

// The phase of a training step the calling thread is in: the engine marks backward passes and the
// optimizers their step, so kernel calls can be attributed; everything else counts as forward.
enum class Phase { Forward, Backward, Optimizer };
Phase current_phase();
const char* phase_name(Phase phase);  // "fwd", "bwd", "optim"
class PhaseScope {
 public:
  explicit PhaseScope(Phase phase);
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  Phase previous_;
};

enum class Table { Kernels, BackwardNodes };
void add(Table table, const char* name, double ms);

// Times a scope into a table when profiling is on. `name` must outlive the profile (string literals,
// or node names that the report copies when it records them).
class Timer {
 public:
  Timer(Table table, const char* name)
      : table_(table), name_(name), on_(enabled()), start_(on_ ? Clock::now() : Clock::time_point{}) {}
  ~Timer() {
    if (on_) add(table_, name_, std::chrono::duration<double, std::milli>(Clock::now() - start_).count());
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  Table table_;
  const char* name_;
  bool on_;
  Clock::time_point start_;
};

// What has been accumulated, one row per (table, phase, name), by time (largest first).
struct Row {
  Table table;
  Phase phase;
  std::string name;
  long long calls;
  double ms;
};
std::vector<Row> rows();

// Prints both tables per step: op, phase, calls per step, ms per step and share of `step_ms` (the
// measured time of one step), sorted by time; then the "outside kernels" remainder.
void report(std::ostream& os, long long steps, double step_ms);

}  // namespace ctxpool::profile
