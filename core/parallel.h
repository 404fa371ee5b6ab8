// parallel_for over an index range with OpenMP. The thread count comes from CTXPOOL_NUM_THREADS
// (default: OpenMP's, i.e. the number of cores). Work is split so that results never depend on the
// thread count: kernels only parallelise over independent outputs, and reductions combine
// fixed-size blocks in a fixed order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <exception>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ctxpool {

// Applies CTXPOOL_NUM_THREADS once (called by parallel_for; cheap after the first call).
void init_num_threads();
int get_num_threads();
void set_num_threads(int n);

// f(begin, end) over chunks of [begin, end); runs inline when the range is below `grain` or when
// already inside a parallel region. An exception thrown by f on any thread (a failed allocation, a
// CTXPOOL_CHECK) is rethrown here after every thread has finished: one may not leave an OpenMP region.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
#ifdef _OPENMP
  init_num_threads();
  if (n > grain && !omp_in_parallel() && omp_get_max_threads() > 1) {
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
      const int64_t t = omp_get_thread_num();
      const int64_t nt = omp_get_num_threads();
      const int64_t chunk = (n + nt - 1) / nt;
      const int64_t b = begin + t * chunk;
      const int64_t e = std::min(end, b + chunk);
      try {
        if (b < e) f(b, e);
      } catch (...) {
#pragma omp critical(ctxpool_parallel_for_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  f(begin, end);
}

}  // namespace ctxpool
