#include "nn/data/cifar10.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "nn/data/jpeg.h"

namespace ctxpool::nn::data {

namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'C', 'T', 'X', 'C', 'I', 'F', 'A', 'R'};
constexpr uint32_t kVersion = 1;
constexpr int64_t kSide = 32, kChannels = 3, kPixels = kSide * kSide * kChannels;

struct Listing {
  std::vector<std::pair<std::string, int64_t>> files;  // (path, class), by class then file name
  std::string fingerprint;                              // of every relative path and size
};

Listing list_jpegs(const std::string& dir, const std::string& split) {
  const fs::path root = fs::path(dir) / split;
  std::error_code ec;
  CTXPOOL_CHECK(fs::is_directory(root, ec), "cifar10: '", root.string(), "' is not a directory (scripts/"
                "get_cifar10.sh unpacks ../shared/data/cifar10-jpeg.tar.gz into data/cifar10-jpeg)");
  Listing out;
  std::string summary;
  const auto& classes = cifar10_classes();
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path folder = root / classes[k];
    CTXPOOL_CHECK(fs::is_directory(folder, ec), "cifar10: class folder '", folder.string(), "' is missing");
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file() && entry.path().extension() == ".jpg") names.push_back(entry.path().filename().string());
    CTXPOOL_CHECK(!names.empty(), "cifar10: class folder '", folder.string(), "' holds no .jpg files");
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      const fs::path path = folder / name;
      out.files.emplace_back(path.string(), static_cast<int64_t>(k));
      summary += classes[k] + "/" + name + ":" + std::to_string(fs::file_size(path)) + "\n";
    }
  }
  out.fingerprint = fnv1a_hex(summary);
  return out;
}

// 0, 1, ..., n - 1 in a fixed pseudo-random order: Fisher-Yates driven by std::mt19937_64, whose
// output the C++ standard fixes (std::shuffle and the distributions are not), so the order is the
// same with every compiler and library.
std::vector<int64_t> shuffled_order(int64_t n) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(10);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
  return order;
}

template <typename T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool get(const std::string& s, size_t& at, T& v) {
  if (at + sizeof v > s.size()) return false;
  std::memcpy(&v, s.data() + at, sizeof v);
  at += sizeof v;
  return true;
}

// header | labels (n bytes) | pixels (n * 3072 bytes, CHW planes per image) | checksum (16 hex digits)
std::string encode_cache(const std::string& fingerprint, const std::vector<uint8_t>& labels,
                         const std::vector<uint8_t>& pixels) {
  std::string payload(reinterpret_cast<const char*>(labels.data()), labels.size());
  payload.append(reinterpret_cast<const char*>(pixels.data()), pixels.size());
  std::string s(kMagic, sizeof kMagic);
  put(s, kVersion);
  put(s, static_cast<uint64_t>(labels.size()));
  s += fingerprint;  // 16 hex digits
  s += payload;
  s += fnv1a_hex(payload);
  return s;
}

// The cached set, or false (with the reason) when the cache is absent, stale or damaged.
bool decode_cache(const std::string& s, const std::string& fingerprint, std::vector<uint8_t>& labels,
                  std::vector<uint8_t>& pixels, std::string& why) {
  size_t at = sizeof kMagic;
  uint32_t version = 0;
  uint64_t n = 0;
  if (s.size() < at || std::memcmp(s.data(), kMagic, sizeof kMagic) != 0 || !get(s, at, version) ||
      version != kVersion || !get(s, at, n))
    return why = "not a cache file of this version", false;
  if (s.compare(at, 16, fingerprint) != 0) return why = "the JPEG files changed", false;
  at += 16;
  const uint64_t payload = n + n * kPixels;
  if (s.size() != at + payload + 16) return why = "wrong size (truncated?)", false;
  if (fnv1a_hex(s.substr(at, payload)) != s.substr(at + payload)) return why = "checksum mismatch", false;
  labels.assign(s.begin() + at, s.begin() + at + n);
  pixels.assign(s.begin() + at + n, s.begin() + at + payload);
  return true;
}

}  // namespace

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

ImageSet load_cifar10(const std::string& dir, const std::string& split) {
  CTXPOOL_CHECK(split == "train" || split == "test", "cifar10: split must be \"train\" or \"test\", got \"", split,
                "\"");
  const Listing listing = list_jpegs(dir, split);
  const std::string cache_path = (fs::path(dir) / (split + ".cache")).string();
  std::vector<uint8_t> labels, pixels;
  std::string why = "absent";
  if (!file_exists(cache_path) ||
      !decode_cache(read_file(cache_path), listing.fingerprint, labels, pixels, why)) {
    std::fprintf(stderr, "cifar10: decoding %zu JPEG files of '%s/%s' into %s (cache: %s)\n", listing.files.size(),
                 dir.c_str(), split.c_str(), cache_path.c_str(), why.c_str());
    const size_t n = listing.files.size();
    labels.resize(n);
    pixels.resize(n * kPixels);
    for (size_t i = 0; i < n; ++i) {
      const DecodedImage img = decode_jpeg(listing.files[i].first);
      CTXPOOL_CHECK(img.height == kSide && img.width == kSide && img.channels == kChannels, "cifar10: '",
                    listing.files[i].first, "' is ", img.height, "x", img.width, " with ", img.channels,
                    " channels; expected 32x32 RGB");
      labels[i] = static_cast<uint8_t>(listing.files[i].second);
      for (int64_t p = 0; p < kSide * kSide; ++p)  // interleaved RGB -> planes
        for (int64_t c = 0; c < kChannels; ++c) pixels[i * kPixels + c * kSide * kSide + p] = img.pixels[p * kChannels + c];
    }
    write_file_atomic(cache_path, encode_cache(listing.fingerprint, labels, pixels));
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  const std::vector<int64_t> order = shuffled_order(n);
  std::vector<float> values(pixels.size());
  std::vector<int64_t> classes(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t from = order[i];
    classes[i] = labels[from];
    for (int64_t p = 0; p < kPixels; ++p) values[i * kPixels + p] = static_cast<float>(pixels[from * kPixels + p]) / 255.0f;
  }
  return {from_vector(values, {n, kChannels, kSide, kSide}, kFloat32), from_vector(classes, {n}, kInt64),
          static_cast<int64_t>(cifar10_classes().size())};
}

}  // namespace ctxpool::nn::data
