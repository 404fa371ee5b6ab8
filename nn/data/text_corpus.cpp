#include "nn/data/text_corpus.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "core/file_io.h"

namespace ctxpool::nn::data {

TextCorpus TextCorpus::load(const std::string& path, const CorpusOptions& options) {
  CTXPOOL_CHECK(file_exists(path), "TextCorpus: cannot open '", path, "' (missing or unreadable)");
  const std::string text = read_file(path);  // a directory or a read error: a clear error
  CTXPOOL_CHECK(!text.empty(), "TextCorpus: '", path, "' is empty");
  TextCorpus c = from_text(text, options);
  c.path_ = path;
  return c;
}

TextCorpus TextCorpus::from_text(const std::string& text, const CorpusOptions& o, const std::vector<uint8_t>& vocab) {
  CTXPOOL_CHECK(!text.empty(), "TextCorpus: the text is empty");
  CTXPOOL_CHECK(o.train_fraction > 0 && o.validation_fraction >= 0 &&
                    o.train_fraction + o.validation_fraction <= 1.0 + 1e-12,
                "TextCorpus: need train_fraction > 0, validation_fraction >= 0 and their sum <= 1, got ",
                o.train_fraction, " and ", o.validation_fraction);
  std::vector<uint8_t> v = vocab;
  if (v.empty()) {
    std::array<bool, 256> seen{};
    for (unsigned char ch : text) seen[ch] = true;
    for (int b = 0; b < 256; ++b)
      if (seen[b]) v.push_back(static_cast<uint8_t>(b));
  }
  TextCorpus c = codec(v);
  c.path_ = "<memory>";

  std::vector<uint8_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int16_t id = c.id_of_[static_cast<unsigned char>(text[i])];
    CTXPOOL_CHECK(id >= 0, "TextCorpus: byte ", int(static_cast<unsigned char>(text[i])), " at offset ", i,
                  " is not in the vocabulary");
    ids[i] = static_cast<uint8_t>(id);
  }
  const size_t n = ids.size();
  size_t n_train, n_val;
  if (o.enwik8_split && n == 100000000) {
    n_train = 90000000;
    n_val = 5000000;
  } else {
    n_train = static_cast<size_t>(o.train_fraction * static_cast<double>(n));
    // Fractions that add up to 1 leave no test split: validation takes the whole rest.
    n_val = o.train_fraction + o.validation_fraction >= 1.0 - 1e-9
                ? n - n_train
                : std::min(n - n_train, static_cast<size_t>(std::llround(o.validation_fraction * static_cast<double>(n))));
  }
  c.splits_[0].assign(ids.begin(), ids.begin() + n_train);
  c.splits_[1].assign(ids.begin() + n_train, ids.begin() + n_train + n_val);
  c.splits_[2].assign(ids.begin() + n_train + n_val, ids.end());
  return c;
}

TextCorpus TextCorpus::codec(const std::vector<uint8_t>& vocab) {
  CTXPOOL_CHECK(!vocab.empty(), "TextCorpus::codec: the vocabulary is empty");
  TextCorpus c;
  c.path_ = "<vocabulary>";
  c.vocab_ = vocab;
  c.id_of_.fill(-1);
  for (size_t i = 0; i < vocab.size(); ++i) c.id_of_[vocab[i]] = static_cast<int16_t>(i);
  return c;
}

std::vector<int64_t> TextCorpus::encode(const std::string& text) const {
  std::vector<int64_t> out;
  for (unsigned char ch : text) {
    CTXPOOL_CHECK(id_of_[ch] >= 0, "encode: byte ", int(ch), " ('", std::string(1, static_cast<char>(ch)),
                  "') is not in the corpus vocabulary");
    out.push_back(id_of_[ch]);
  }
  return out;
}

std::string TextCorpus::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    CTXPOOL_CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " is out of range for a vocabulary of ",
                  vocab_size());
    out.push_back(static_cast<char>(vocab_[id]));
  }
  return out;
}

namespace {
const char* split_name(Split s) { return s == Split::Train ? "train" : s == Split::Validation ? "validation" : "test"; }
}  // namespace

std::pair<Tensor, Tensor> TextCorpus::random_batch(Split split, int64_t batch, int64_t context, Generator& gen) const {
  const std::vector<uint8_t>& t = tokens(split);
  CTXPOOL_CHECK(batch > 0 && context > 0, "random_batch: batch and context must be positive");
  CTXPOOL_CHECK(static_cast<int64_t>(t.size()) >= context + 1, "random_batch: the ", split_name(split), " split has ",
                t.size(), " tokens, fewer than context + 1 = ", context + 1);
  const int64_t positions = static_cast<int64_t>(t.size()) - context;  // valid starts: [0, positions)
  std::vector<double> u(batch);
  gen.uniform(u.data(), batch);
  Tensor x = empty({batch, context}, kInt64), y = empty({batch, context}, kInt64);
  int64_t* xp = x.data_ptr<int64_t>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t start = std::min(positions - 1, static_cast<int64_t>(u[b] * static_cast<double>(positions)));
    for (int64_t i = 0; i < context; ++i) {
      xp[b * context + i] = t[start + i];
      yp[b * context + i] = t[start + i + 1];
    }
  }
  return {x, y};
}

int64_t TextCorpus::num_windows(Split split, int64_t context) const {
  const int64_t n = size(split);
  return n < context + 1 ? 0 : (n - 1) / context;
}

std::pair<Tensor, Tensor> TextCorpus::windows(Split split, int64_t context, int64_t first, int64_t count) const {
  const int64_t total = num_windows(split, context);
  CTXPOOL_CHECK(first >= 0 && count >= 0 && first + count <= total, "windows: [", first, ", ", first + count,
                ") is out of range: the ", split_name(split), " split has ", total, " windows of ", context);
  const std::vector<uint8_t>& t = tokens(split);
  Tensor x = empty({count, context}, kInt64), y = empty({count, context}, kInt64);
  int64_t* xp = x.data_ptr<int64_t>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int64_t w = 0; w < count; ++w) {
    const int64_t start = (first + w) * context;
    for (int64_t i = 0; i < context; ++i) {
      xp[w * context + i] = t[start + i];
      yp[w * context + i] = t[start + i + 1];
    }
  }
  return {x, y};
}

}  // namespace ctxpool::nn::data
