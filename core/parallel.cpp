#include "core/parallel.h"

#include <cstdlib>
#include <mutex>

namespace ctxpool {

void init_num_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* env = std::getenv("CTXPOOL_NUM_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0) set_num_threads(n);
    }
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

void set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

}  // namespace ctxpool
