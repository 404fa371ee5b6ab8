#include "nn/data/data_loader.h"

#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace ctxpool::nn::data {

DataLoader::DataLoader(int64_t size, int64_t batch, bool shuffle, uint64_t seed, bool drop_last)
    : size_(size), batch_(batch), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  CTXPOOL_CHECK(size >= 0 && batch > 0, "DataLoader: need dataset_size >= 0 and batch_size > 0, got ", size,
                " and ", batch);
}

int64_t DataLoader::num_batches() const { return drop_last_ ? size_ / batch_ : (size_ + batch_ - 1) / batch_; }

std::vector<std::vector<int64_t>> DataLoader::epoch(int64_t epoch_index) const {
  std::vector<int64_t> order(size_);
  std::iota(order.begin(), order.end(), 0);
  if (shuffle_ && size_ > 1) {
    // Each epoch has its own Philox stream (a key derived from seed and epoch).
    Generator gen(seed_);
    gen.set_state(seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch_index + 1)), 0);
    std::vector<double> u(size_);
    gen.uniform(u.data(), size_);
    for (int64_t i = size_ - 1; i > 0; --i) {
      const int64_t j = std::min<int64_t>(i, static_cast<int64_t>(u[i] * static_cast<double>(i + 1)));
      std::swap(order[i], order[j]);
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < num_batches(); ++b) {
    const int64_t first = b * batch_, last = std::min(size_, first + batch_);
    batches.emplace_back(order.begin() + first, order.begin() + last);
  }
  return batches;
}

}  // namespace ctxpool::nn::data
