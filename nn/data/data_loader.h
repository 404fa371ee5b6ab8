// DataLoader: batches of dataset indices, in order or shuffled with a seeded Fisher-Yates shuffle
// (Philox), so epoch e of a given seed is the same on every run, machine and thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace ctxpool::nn::data {

class DataLoader {
 public:
  DataLoader(int64_t dataset_size, int64_t batch_size, bool shuffle = true, uint64_t seed = 0,
             bool drop_last = false);
  // The batches of one epoch (each a list of indices into the dataset).
  std::vector<std::vector<int64_t>> epoch(int64_t epoch_index) const;
  int64_t num_batches() const;

 private:
  int64_t size_, batch_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
};

}  // namespace ctxpool::nn::data
