#include "models/progress.h"

#include <unistd.h>

#include <cstdio>

namespace ctxpool::models {

ProgressBar::ProgressBar(int64_t total, int64_t start, bool show)
    : total_(total), start_(start), show_(show), t0_(std::chrono::steady_clock::now()) {}

bool ProgressBar::enabled() {
  static const bool tty = ::isatty(STDERR_FILENO) == 1;
  return tty;
}

std::string format_duration(double s) {
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  }
  return buf;
}

std::string elapsed_and_eta(double elapsed_s, int64_t done, int64_t remaining) {
  std::string out = "elapsed " + format_duration(elapsed_s) + ", ETA ";
  if (done <= 0) return out + "?";
  return out + format_duration(elapsed_s / static_cast<double>(done) * static_cast<double>(remaining));
}

void ProgressBar::update(int64_t done, const std::string& status) {
  if (!show_ || !enabled()) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double rate = done > start_ && elapsed > 0 ? static_cast<double>(done - start_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  constexpr int kWidth = 30;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::fprintf(stderr, "\r[%s] %lld/%lld  %.2f it/s  ETA %s  %s\033[K", bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), rate, format_duration(eta).c_str(), status.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace ctxpool::models
