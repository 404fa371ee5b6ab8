// A byte-level text corpus for character language models. The vocabulary is the sorted set of
// distinct bytes of the whole file; the file is split into train / validation / test by fraction,
// or by the enwik8 convention (first 90M / next 5M / last 5M bytes) for a 100,000,000-byte file,
// which is also text8's standard split (text8 is the first 10^8 bytes of enwik9, cleaned).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace ctxpool::nn::data {

enum class Split { Train, Validation, Test };

struct CorpusOptions {
  double train_fraction = 0.9;
  double validation_fraction = 0.1;  // the rest (if any) is the test split
  bool enwik8_split = true;          // use 90M/5M/5M when the file has exactly 100,000,000 bytes
};

class TextCorpus {
 public:
  // Reads the whole file; a missing, unreadable or empty file is an error naming the path.
  static TextCorpus load(const std::string& path, const CorpusOptions& options = {});
  // From bytes in memory (tests); `vocab` fixes the vocabulary (else: the distinct bytes of text).
  static TextCorpus from_text(const std::string& text, const CorpusOptions& options = {},
                              const std::vector<uint8_t>& vocab = {});
  // No text, only a vocabulary: for encoding and decoding (e.g. with a checkpoint's vocabulary).
  static TextCorpus codec(const std::vector<uint8_t>& vocab);

  const std::vector<uint8_t>& vocab() const { return vocab_; }  // token id -> byte
  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  const std::vector<uint8_t>& tokens(Split split) const { return splits_[static_cast<int>(split)]; }
  int64_t size(Split split) const { return static_cast<int64_t>(tokens(split).size()); }
  const std::string& path() const { return path_; }

  std::vector<int64_t> encode(const std::string& text) const;  // error on a byte not in the vocabulary
  std::string decode(const std::vector<int64_t>& ids) const;

  // `batch` random contiguous windows of context + 1 tokens from the split (start uniform), drawn
  // from `gen`: (inputs [batch, context], targets [batch, context]) as int64.
  std::pair<Tensor, Tensor> random_batch(Split split, int64_t batch, int64_t context, Generator& gen) const;
  // Non-overlapping windows for evaluation: window w starts at w * context and needs context + 1
  // tokens. Returns how many there are, and (inputs, targets) for windows [first, first + count).
  int64_t num_windows(Split split, int64_t context) const;
  std::pair<Tensor, Tensor> windows(Split split, int64_t context, int64_t first, int64_t count) const;

 private:
  std::string path_;
  std::vector<uint8_t> vocab_;
  std::array<int16_t, 256> id_of_{};
  std::array<std::vector<uint8_t>, 3> splits_;
};

}  // namespace ctxpool::nn::data
