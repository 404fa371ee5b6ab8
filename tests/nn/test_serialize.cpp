#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/file_io.h"
#include "helpers/test_utils.h"
#include "nn/serialize.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(Safetensors, RoundTripEveryDtype) {
  manual_seed(1);
  std::map<std::string, Tensor> in{{"f32", randn({2, 3})}, {"f64", randn({4}, kFloat64)},
                                   {"i64", arange(5, kInt64)}, {"mask", ops::gt(randn({3}), zeros({3}))},
                                   {"scalar", scalar_tensor(2.5)}, {"view", randn({3, 4}).t()}};
  const std::string path = ::testing::TempDir() + "/ctxpool_roundtrip.safetensors";
  nn::save_safetensors(path, in, {{"note", "hello"}});
  std::map<std::string, std::string> meta;
  auto out = nn::load_safetensors(path, &meta);
  EXPECT_EQ(meta["note"], "hello");
  ASSERT_EQ(out.size(), in.size());
  for (auto& [k, t] : in) {
    EXPECT_EQ(out[k].sizes(), t.sizes()) << k;
    EXPECT_EQ(out[k].dtype(), t.dtype()) << k;
    EXPECT_EQ(out[k].to_vector<double>(), t.to_vector<double>()) << k;
  }
  std::remove(path.c_str());
}

TEST(Safetensors, FollowsTheFormat) {
  const std::string bytes = nn::to_safetensors({{"w", tensor({1.0, 2.0})}});
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ((8 + n) % 8, 0u);  // data 8-byte aligned
  EXPECT_NE(header.find("\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 8);
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(Safetensors, CorruptionIsDetected) {
  const std::string good = nn::to_safetensors({{"a", ones({4})}, {"b", zeros({2})}});
  EXPECT_ERROR_WITH(nn::from_safetensors(good.substr(0, 5), "x"), "safetensors", "'x'", "truncated");
  EXPECT_ERROR_WITH(nn::from_safetensors(good.substr(0, good.size() - 4), "x"), "safetensors", "do not fit");
  std::string bad_json = good;
  bad_json[9] = '#';
  EXPECT_ERROR_WITH(nn::from_safetensors(bad_json, "x"), "safetensors", "corrupted header");
  std::string huge_header = good;
  huge_header[7] = '\x7f';
  EXPECT_ERROR_WITH(nn::from_safetensors(huge_header, "x"), "safetensors", "truncated or corrupted");
  EXPECT_ERROR_WITH(nn::from_safetensors(good + "junk", "x"), "safetensors", "trailing bytes");
  EXPECT_ERROR_WITH(nn::load_safetensors("/nonexistent.safetensors"), "/nonexistent.safetensors");
}

TEST(FileIO, AtomicWriteLeavesNoTempFile) {
  const std::string path = ::testing::TempDir() + "/ctxpool_atomic.txt";
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  EXPECT_FALSE(file_exists(path + ".tmp." + std::to_string(::getpid())));
  EXPECT_ERROR_WITH(write_file_atomic("/nonexistent/dir/file", "x"), "write_file_atomic", "/nonexistent/dir/file");
  std::remove(path.c_str());
}

TEST(Safetensors, HugeShapesAreRejectedBeforeAllocating) {
  // A header claiming 2^62 floats over an empty data section.
  const std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  EXPECT_ERROR_WITH(nn::from_safetensors(bytes, "evil"), "safetensors", "too large");
  const std::string meta = "{\"__metadata__\":[1,2]}";
  std::string bytes2(8, '\0');
  for (int i = 0; i < 8; ++i) bytes2[i] = static_cast<char>((meta.size() >> (8 * i)) & 0xff);
  EXPECT_ERROR_WITH(nn::from_safetensors(bytes2 + meta, "m"), "__metadata__ must be an object");
}
