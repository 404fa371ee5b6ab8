#include "core/parallel.h"

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace ctxpool {

// CTXPOOL_NUM_THREADS, read once: a positive integer, or unset/empty. Anything else is an error
// (a typo must not silently run on every core).
void init_num_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("CTXPOOL_NUM_THREADS");
    if (env == nullptr || *env == '\0') return;
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    CTXPOOL_CHECK(*end == '\0' && errno == 0 && n > 0 && n <= 4096, "CTXPOOL_NUM_THREADS='", env,
                  "' is not a thread count (a positive integer)");
#ifdef _OPENMP
    omp_set_num_threads(static_cast<int>(n));
#endif
  });
}

int get_num_threads() {
#ifdef _OPENMP
  init_num_threads();
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// An explicit count (--threads, train.threads) wins over CTXPOOL_NUM_THREADS: the environment is
// applied first, so that it cannot override this later.
void set_num_threads(int n) {
#ifdef _OPENMP
  init_num_threads();
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace ctxpool
