// Prefetcher: makes item k + 1 on a background thread while the caller works on item k, so that
// preparing a batch (decoding, augmenting) overlaps the training step instead of adding to it.
//   Prefetcher<Batch> batches([&](int64_t step) { return make_batch(step); }, first_step);
//   Batch b = batches.next();  // item first_step, then first_step + 1, ...
// `make` is called for one item at a time, in order (never concurrently with itself), so it may
// keep state such as the current epoch's order. An exception it throws reaches the caller of next().
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <utility>

namespace ctxpool::nn::data {

template <class T>
class Prefetcher {
 public:
  Prefetcher(std::function<T(int64_t)> make, int64_t first) : make_(std::move(make)), next_(first) { launch(); }
  ~Prefetcher() {
    if (pending_.valid()) pending_.wait();  // the thread reads the caller's data: let it finish first
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item (waiting for it if it is not ready yet); starts making the one after.
  T next() {
    T item = pending_.get();
    ++next_;
    launch();
    return item;
  }

 private:
  void launch() { pending_ = std::async(std::launch::async, make_, next_); }

  std::function<T(int64_t)> make_;
  int64_t next_;
  std::future<T> pending_;
};

}  // namespace ctxpool::nn::data
