// parallel_for: every index once, inline inside a region, and an exception from any thread reaching
// the caller (one must not escape an OpenMP region: that would end the process).
#include "core/parallel.h"

#include <atomic>
#include <stdexcept>
#include <vector>

#include "helpers/test_utils.h"

using namespace ctxpool;

TEST(ParallelFor, VisitsEveryIndexOnce) {
  const int threads = get_num_threads();
  set_num_threads(2);
  std::vector<std::atomic<int>> seen(1000);
  parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) seen[i]++;
  });
  for (const auto& s : seen) EXPECT_EQ(s.load(), 1);
  set_num_threads(threads);
}

TEST(ParallelFor, AnExceptionOnAnyThreadReachesTheCaller) {
  const int threads = get_num_threads();
  set_num_threads(2);
  for (int64_t failing : {0, 999}) {  // in the first chunk, and in the last (another thread's, with 2)
    bool caught = false;
    try {
      parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
        if (failing >= b && failing < e) throw std::runtime_error("kernel failed");
      });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "kernel failed";
    }
    EXPECT_TRUE(caught) << "failing index " << failing;
  }
  set_num_threads(threads);
}
