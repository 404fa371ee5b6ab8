// Every op in ops.h against PyTorch, edge values included: tests/golden/ops.safetensors holds 280-odd
// cases (inputs, outputs, upstream gradients and input gradients computed by PyTorch; see
// bench/reference/golden_ops.py and golden_op_cases.py) and golden_op_table.cpp calls our op for each.
// Conv, pooling, batch norm and ContextPool have their own golden files (test_golden.cpp).
//
// A case passes when every output has PyTorch's dtype, shape and values (NaN where PyTorch has NaN,
// the same infinities), every input gradient matches, and a call PyTorch refuses throws ctxpool::Error.
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "golden_op_table.h"
#include "helpers/golden.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

// float64 against float64: every op should agree to rounding (most cases agree to 1e-15).
constexpr Tolerance kTight{1e-12, 1e-10};

bool contains(const nlohmann::json& list, const std::string& name) {
  for (const auto& item : list)
    if (item.get<std::string>() == name) return true;
  return false;
}

// Runs case i with floating inputs in `dtype`; float64 golden outputs are expected in `dtype`.
void check_case(const GoldenFile& golden, int i, DType dtype, Tolerance forward, Tolerance backward) {
  const std::string name = golden.describe(i);
  const nlohmann::json meta = golden.options(i);
  SCOPED_TRACE(name + " " + meta.dump());
  const auto& table = golden_op_table();
  const auto op = table.find(meta.at("op").get<std::string>());
  ASSERT_NE(op, table.end()) << name << ": no entry in golden_op_table.cpp";

  std::vector<Tensor> leaves, passed;
  for (const auto& input : meta.at("inputs")) {
    const std::string input_name = input.get<std::string>();
    Tensor t = golden.get(i, "in." + input_name);
    t = (is_floating(t.dtype()) ? t.to(dtype) : t).clone();
    if (contains(meta.at("grad"), input_name)) t.requires_grad_(true);
    leaves.push_back(t);
    passed.push_back(contains(meta.at("transposed"), input_name) ? t.transpose(-2, -1) : t);
  }
  if (meta.at("error").get<bool>()) {
    EXPECT_THROW(op->second(passed, meta.at("args")), Error)
        << name << ": PyTorch refuses it (" << meta.value("pytorch_error", "") << ")";
    return;
  }
  const std::vector<Tensor> outputs = op->second(passed, meta.at("args"));
  std::vector<Tensor> roots, grad_roots;
  for (size_t k = 0;; ++k) {
    const std::string key = "out" + std::to_string(k);
    if (!golden.has(i, key)) {
      EXPECT_EQ(outputs.size(), k) << name << ": PyTorch returns " << k << " outputs";
      break;
    }
    ASSERT_LT(k, outputs.size()) << name << ": PyTorch returns more outputs";
    const Tensor& want = golden.get(i, key);
    const DType want_dtype = want.dtype() == kFloat64 ? dtype : want.dtype();
    EXPECT_EQ(outputs[k].dtype(), want_dtype) << name << " " << key;
    expect_close(outputs[k], want, forward, name + " " + key);
    // Outputs that do not require grad here contribute nothing; the gradient comparison below then
    // shows whether PyTorch agrees that they have none.
    if (golden.has(i, "gy" + std::to_string(k)) && outputs[k].requires_grad()) {
      roots.push_back(outputs[k]);
      grad_roots.push_back(golden.get(i, "gy" + std::to_string(k)).to(outputs[k].dtype()));
    }
  }
  std::vector<Tensor> inputs;
  std::vector<std::string> input_names;
  for (size_t n = 0; n < leaves.size(); ++n)
    if (leaves[n].requires_grad()) inputs.push_back(leaves[n]), input_names.push_back(meta.at("inputs")[n]);
  if (inputs.empty()) return;
  std::vector<Tensor> grads(inputs.size());
  if (!roots.empty()) grads = autograd::grad(roots, inputs, grad_roots, false, false, /*allow_unused=*/true);
  for (size_t n = 0; n < inputs.size(); ++n) {
    const Tensor got = grads[n].defined() ? grads[n] : zeros_like(inputs[n]);
    expect_close(got, golden.get(i, "grad." + input_names[n]), backward, name + " grad of " + input_names[n]);
  }
}

// The golden file, read once per process.
const GoldenFile* ops_golden() {
  static GoldenFile golden;
  static const bool loaded = load_golden("ops", &golden);
  return loaded ? &golden : nullptr;
}

// Every case of `op` (in float32 only those marked for it).
void check_op(const std::string& op, DType dtype, Tolerance forward, Tolerance backward) {
  const GoldenFile* golden = ops_golden();
  if (!golden) return;
  int run = 0;
  for (int i = 0; i < golden->cases; ++i) {
    const nlohmann::json meta = golden->options(i);
    if (meta.at("op") != op || (dtype == kFloat32 && !meta.at("f32").get<bool>())) continue;
    try {
      check_case(*golden, i, dtype, forward, backward);
    } catch (const std::exception& e) {
      ADD_FAILURE() << golden->describe(i) << " " << dtype << ": unexpected exception: " << e.what();
    }
    ++run;
  }
  if (run == 0 && dtype == kFloat32) GTEST_SKIP() << op << ": every case is float64-only";
  EXPECT_GT(run, 0) << op << " has no golden case";
}

std::vector<std::string> table_ops() {
  std::vector<std::string> names;
  for (const auto& [op, fn] : golden_op_table()) names.push_back(op);
  return names;
}

class GoldenOpTest : public ::testing::TestWithParam<std::string> {};

}  // namespace

// One test per op and dtype, so that ctest names the op that disagrees.
TEST_P(GoldenOpTest, Float64MatchesPyTorch) { check_op(GetParam(), kFloat64, kTight, kTight); }
TEST_P(GoldenOpTest, Float32MatchesPyTorch) { check_op(GetParam(), kFloat32, kFloat32Forward, kFloat32Grad); }
INSTANTIATE_TEST_SUITE_P(Ops, GoldenOpTest, ::testing::ValuesIn(table_ops()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Every op the table knows has cases, and every case's op is in the table: a new op gets both.
TEST(GoldenOps, EveryOpHasCases) {
  GoldenFile golden;
  if (!load_golden("ops", &golden)) return;
  std::set<std::string> seen;
  for (int i = 0; i < golden.cases; ++i) seen.insert(golden.options(i).at("op").get<std::string>());
  for (const auto& [op, fn] : golden_op_table()) EXPECT_TRUE(seen.count(op)) << op << " has no golden case";
  for (const std::string& op : seen) EXPECT_TRUE(golden_op_table().count(op)) << op << " is not in the table";
}

// Every function ops.h declares is checked against PyTorch here or in test_golden.cpp, or is listed
// below with the reason it is not.
TEST(GoldenOps, EveryOpInOpsHeaderIsCovered) {
  const std::set<std::string> in_other_files = {"conv1d", "conv2d", "conv2d_im2col", "max_pool2d", "max_pool2d_with_indices",
                                                "avg_pool2d", "adaptive_avg_pool2d", "batch_norm",
                                                "context_pool1d", "context_pool2d"};
  const std::set<std::string> exempt = {
      "context_pool1d_reference", "context_pool2d_reference",  // the naive references the fused ops are tested with
      "context_pool1d_support",                                 // s = s_min + (s_max - s_min) sigmoid(b): test_context_pool
      "uniform",  // random numbers: checked against our own generator's stream (test_functional), not PyTorch's
      "cuda_is_available", "cuda_device_count"};                // device queries
  std::ifstream header(std::string(CTXPOOL_SOURCE_DIR) + "/ops/ops.h");
  ASSERT_TRUE(header.good());
  const std::regex declaration(R"(^(?:Tensor|std::pair<Tensor, Tensor>|std::vector<Tensor>|void|bool|int) (\w+)\()");
  std::set<std::string> declared;
  for (std::string line; std::getline(header, line);) {
    std::smatch m;
    if (std::regex_search(line, m, declaration)) declared.insert(m[1]);
  }
  EXPECT_GT(declared.size(), 80u) << "the declaration pattern no longer matches ops.h";
  GoldenFile golden;
  if (!load_golden("ops", &golden)) return;
  std::set<std::string> covered;
  for (int i = 0; i < golden.cases; ++i) {
    std::string op = golden.options(i).at("op").get<std::string>();
    for (const char* suffix : {"_dims", "_dim", "_scalar", "_all", "_sizes"})  // variants of one function
      if (op.size() > strlen(suffix) && op.compare(op.size() - strlen(suffix), std::string::npos, suffix) == 0)
        op.resize(op.size() - strlen(suffix));
    covered.insert(op);
  }
  for (const std::string& op : declared)
    EXPECT_TRUE(covered.count(op) || in_other_files.count(op) || exempt.count(op))
        << "ops::" << op << " has no PyTorch golden case: add one to bench/reference/golden_op_cases.py";
}
