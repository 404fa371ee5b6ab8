#include "models/stop_signal.h"

#include <atomic>
#include <csignal>

namespace ctxpool::models {

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) {  // the second signal: stop now, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

bool stop_requested() { return g_stop.load(); }
void request_stop() { g_stop.store(true); }
void clear_stop_request() { g_stop.store(false); }

StopSignalGuard::StopSignalGuard()
    : old_int_(std::signal(SIGINT, on_stop_signal)), old_term_(std::signal(SIGTERM, on_stop_signal)) {}

StopSignalGuard::~StopSignalGuard() {
  std::signal(SIGINT, old_int_ == SIG_ERR ? SIG_DFL : old_int_);
  std::signal(SIGTERM, old_term_ == SIG_ERR ? SIG_DFL : old_term_);
}

}  // namespace ctxpool::models
