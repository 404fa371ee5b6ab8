#include <cstdio>
#include <fstream>
#include <set>

#include "helpers/test_utils.h"
#include "nn/data/data_loader.h"
#include "nn/data/text_corpus.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using namespace ctxpool::nn::data;

TEST(TextCorpus, VocabularySplitsAndCodec) {
  const std::string text = "abracadabra, abracadabra!";  // 25 bytes
  TextCorpus c = TextCorpus::from_text(text);
  EXPECT_EQ(std::string(c.vocab().begin(), c.vocab().end()), " !,abcdr");
  EXPECT_EQ(c.size(Split::Train), 22);  // int(0.9 * 25)
  EXPECT_EQ(c.size(Split::Validation), 3);
  EXPECT_EQ(c.size(Split::Test), 0);
  EXPECT_EQ(c.decode(c.encode("cab")), "cab");
  EXPECT_ERROR_WITH(c.encode("xyz"), "encode", "not in the corpus vocabulary");
  TextCorpus three = TextCorpus::from_text(std::string(100, 'a'), CorpusOptions{0.8, 0.1});
  EXPECT_EQ(three.size(Split::Train), 80);
  EXPECT_EQ(three.size(Split::Validation), 10);
  EXPECT_EQ(three.size(Split::Test), 10);
}

// enwik8 and text8 are both 10^8 bytes, and both split 90M / 5M / 5M.
TEST(TextCorpus, Enwik8AndText8ConventionForHundredMillionBytes) {
  std::string text(100000000, 'x');
  text[95000000] = 'y';
  TextCorpus c = TextCorpus::from_text(text);
  EXPECT_EQ(c.size(Split::Train), 90000000);
  EXPECT_EQ(c.size(Split::Validation), 5000000);
  EXPECT_EQ(c.size(Split::Test), 5000000);
  EXPECT_EQ(c.tokens(Split::Test)[0], c.encode("y")[0]);
}

TEST(TextCorpus, FileErrors) {
  EXPECT_ERROR_WITH(TextCorpus::load("/nonexistent/corpus.txt"), "TextCorpus", "/nonexistent/corpus.txt", "cannot open");
  const std::string empty_path = ::testing::TempDir() + "/ctxpool_empty.txt";
  std::ofstream(empty_path).close();
  EXPECT_ERROR_WITH(TextCorpus::load(empty_path), "TextCorpus", "is empty");
  std::remove(empty_path.c_str());
}

TEST(TextCorpus, BatchesAndWindows) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>('a' + i % 26);
  TextCorpus c = TextCorpus::from_text(text);
  Generator g1(7), g2(7);
  auto [x, y] = c.random_batch(Split::Train, 4, 16, g1);
  EXPECT_EQ(x.sizes(), (Shape{4, 16}));
  EXPECT_EQ(x.dtype(), kInt64);
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(y.at({b, i}), x.at({b, i + 1}));
  EXPECT_EQ(x.to_vector<int64_t>(), c.random_batch(Split::Train, 4, 16, g2).first.to_vector<int64_t>());
  // Validation: 100 bytes -> windows of 16 need 17 bytes: (100 - 1) / 16 = 6 windows.
  EXPECT_EQ(c.num_windows(Split::Validation, 16), 6);
  auto [wx, wy] = c.windows(Split::Validation, 16, 1, 2);
  EXPECT_EQ(wx.at({0, 0}), c.tokens(Split::Validation)[16]);
  EXPECT_EQ(wy.at({1, 15}), c.tokens(Split::Validation)[48]);
  EXPECT_ERROR_WITH(c.windows(Split::Validation, 16, 5, 2), "windows", "out of range");
  EXPECT_ERROR_WITH(c.random_batch(Split::Validation, 1, 200, g1), "random_batch", "fewer than context + 1");
}

TEST(DataLoader, SeededShufflingCoversEveryIndex) {
  DataLoader loader(10, 3, true, 42);
  auto e0 = loader.epoch(0);
  ASSERT_EQ(e0.size(), 4u);
  EXPECT_EQ(e0.back().size(), 1u);
  std::multiset<int64_t> seen;
  for (auto& b : e0) seen.insert(b.begin(), b.end());
  EXPECT_EQ(seen, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(e0, DataLoader(10, 3, true, 42).epoch(0));
  EXPECT_NE(e0, loader.epoch(1));
  EXPECT_EQ(DataLoader(10, 3, true, 42, /*drop_last=*/true).epoch(0).size(), 3u);
  EXPECT_EQ(DataLoader(5, 2, false).epoch(3)[1], (std::vector<int64_t>{2, 3}));
  EXPECT_ERROR_WITH(DataLoader(5, 0), "DataLoader", "batch_size");
}
