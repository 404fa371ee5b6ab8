// Stopping a training run cleanly from outside: Ctrl-C (SIGINT) or SIGTERM asks the training loop
// to stop after the step in progress; it writes a checkpoint and says how to resume, so nothing
// since the last periodic checkpoint is lost. A second signal ends the process at once (the usual
// way out of a hung run).
//
//   StopSignalGuard guard;            // installs the handlers; the old ones come back at scope exit
//   while (...) { step(); if (stop_requested()) { checkpoint(); break; } }
#pragma once

namespace ctxpool::models {

bool stop_requested();
void request_stop();        // what the handlers do (tests and embedding programs may call it too)
// The request stays until cleared, so that a program running several trainings (ctxpool-grid)
// stops them all.
void clear_stop_request();

class StopSignalGuard {
 public:
  StopSignalGuard();
  ~StopSignalGuard();
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

}  // namespace ctxpool::models
