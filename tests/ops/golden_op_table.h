// The ops that tests/golden/ops.safetensors names, as calls into ops.h: the C++ half of
// bench/reference/golden_ops.py's TORCH_OPS (same names, same argument keys).
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ctxpool::testing {

// inputs in the case's order, args the case's JSON arguments -> the op's outputs.
using GoldenOp = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs, const nlohmann::json& args)>;

const std::map<std::string, GoldenOp>& golden_op_table();

}  // namespace ctxpool::testing
