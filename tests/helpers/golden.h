// Reading PyTorch golden files (tests/golden/*.safetensors, written by bench/reference/make_golden.py)
// and comparing against them: NaN matches NaN, an infinity matches the same infinity, integers and
// bools match exactly, floats within atol + rtol |want|.
#pragma once
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "core/tensor.h"
#include "nn/serialize.h"

#ifndef CTXPOOL_GOLDEN_DIR
#error "CTXPOOL_GOLDEN_DIR must name tests/golden (see tests/CMakeLists.txt)"
#endif

namespace ctxpool::testing {

struct Tolerance {
  double atol, rtol;
};
// float64 against float64: only rounding differences between two implementations.
constexpr Tolerance kFloat64Tol{1e-9, 1e-7};
// float32 against float64 golden values: |ours - ref| <= atol + rtol |ref|, forward atol 1e-6 and
// gradients 1e-4, rtol 1e-3 (the project's style guide's float32 tolerances).
constexpr Tolerance kFloat32Forward{1e-6, 1e-3};
constexpr Tolerance kFloat32Grad{1e-4, 1e-3};

struct GoldenFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  int cases = 0;

  bool has(int i, const std::string& name) const { return tensors.count(key(i, name)) > 0; }
  const Tensor& get(int i, const std::string& name) const { return tensors.at(key(i, name)); }
  nlohmann::json options(int i) const { return nlohmann::json::parse(metadata.at("case" + std::to_string(i))); }
  std::string describe(int i) const {
    auto it = metadata.find(key(i, "description"));
    return "case" + std::to_string(i) + (it == metadata.end() ? "" : " (" + it->second + ")");
  }
  static std::string key(int i, const std::string& name) { return "case" + std::to_string(i) + "." + name; }
};

// Loads tests/golden/<name>.safetensors. A missing file is a failure, not a skip.
inline bool load_golden(const std::string& name, GoldenFile* out) {
  const std::string path = std::string(CTXPOOL_GOLDEN_DIR) + "/" + name + ".safetensors";
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "golden file " << path << " is missing: run /usr/bin/python3 bench/reference/make_golden.py "
                  << "(needs PyTorch) and commit tests/golden/";
    return false;
  }
  out->tensors = nn::load_safetensors(path, &out->metadata);
  out->cases = std::stoi(out->metadata.at("cases"));
  EXPECT_GT(out->cases, 0) << path;
  return true;
}

// How far `got` is outside the tolerance around `want` (<= 0: inside). Special values must match.
inline double golden_excess(double got, double want, Tolerance tol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got) ? 0 : INFINITY;
  if (std::isinf(want) || std::isinf(got)) return got == want ? 0 : INFINITY;
  return std::abs(got - want) - (tol.atol + tol.rtol * std::abs(want));
}

// Every element close (exact for integer and bool tensors); on failure, names `what` and shows the
// worst element.
inline void expect_close(const Tensor& got, const Tensor& want, Tolerance tol, const std::string& what) {
  if (!got.defined()) {
    ADD_FAILURE() << what << ": undefined (a missing gradient; PyTorch's has " << want.numel() << " elements)";
    return;
  }
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  if (!is_floating(want.dtype())) tol = {0, 0};
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  size_t worst = 0;
  double worst_excess = -INFINITY;
  for (size_t k = 0; k < g.size(); ++k) {
    const double excess = golden_excess(g[k], w[k], tol);
    if (excess > worst_excess) worst_excess = excess, worst = k;
  }
  if (worst_excess > 0)
    ADD_FAILURE() << what << " " << got.dtype() << ": worst at element " << worst << " of " << g.size() << ": got "
                  << g[worst] << ", PyTorch " << w[worst] << " (tolerance " << tol.atol << " + " << tol.rtol
                  << " * |ref|)";
}

}  // namespace ctxpool::testing
