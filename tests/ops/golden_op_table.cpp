#include "golden_op_table.h"

#include <cmath>
#include <stdexcept>

#include "ops/ops.h"

namespace ctxpool::testing {
namespace {

using json = nlohmann::json;
using Outputs = std::vector<Tensor>;

Outputs one(Tensor t) { return {std::move(t)}; }

DType dtype_named(const std::string& name) {
  if (name == "float32") return kFloat32;
  if (name == "float64") return kFloat64;
  if (name == "int64") return kInt64;
  if (name == "bool") return kBool;
  throw std::invalid_argument("golden ops: unknown dtype '" + name + "'");
}

ops::Reduction reduction_named(const std::string& name) {
  if (name == "mean") return ops::Reduction::Mean;
  if (name == "sum") return ops::Reduction::Sum;
  if (name == "none") return ops::Reduction::None;
  throw std::invalid_argument("golden ops: unknown reduction '" + name + "'");
}

// A number argument; NaN and infinities come as the strings "nan", "inf" and "-inf" (JSON has none).
double number(const json& j) {
  if (!j.is_string()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "nan") return NAN;
  if (s == "inf" || s == "-inf") return s == "inf" ? INFINITY : -INFINITY;
  throw std::invalid_argument("golden ops: '" + s + "' is not a number");
}

std::array<int64_t, 2> pair(const json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

template <typename Fn> GoldenOp unary(Fn fn) {
  return [fn](const Outputs& t, const json&) { return one(fn(t.at(0))); };
}
template <typename Fn> GoldenOp binary(Fn fn) {
  return [fn](const Outputs& t, const json&) { return one(fn(t.at(0), t.at(1))); };
}

// The in-place updates work on copies: the golden tensors stay as loaded.
Outputs adamw(const Outputs& t, const json& a) {
  Tensor p = t.at(0).clone(), m = t.at(2).clone(), v = t.at(3).clone();
  ops::AdamWUpdate u;
  u.lr = a.at("lr"), u.beta1 = a.at("beta1"), u.beta2 = a.at("beta2"), u.eps = a.at("eps");
  u.weight_decay = a.at("weight_decay"), u.step = a.at("step");
  ops::adamw_update_(p, t.at(1), m, v, u);
  return {p, m, v};
}

Outputs sgd(const Outputs& t, const json& a) {
  ops::SGDUpdate u;
  u.lr = a.at("lr"), u.momentum = a.at("momentum"), u.weight_decay = a.at("weight_decay");
  u.nesterov = a.at("nesterov"), u.first = a.at("first");
  Tensor p = t.at(0).clone(), buf = u.momentum != 0 ? t.at(2).clone() : Tensor();
  ops::sgd_update_(p, t.at(1), buf, u);
  return u.momentum != 0 ? Outputs{p, buf} : Outputs{p};
}

std::map<std::string, GoldenOp> make_table() {
  std::map<std::string, GoldenOp> t;
  // elementwise
  t["add"] = binary(ops::add), t["sub"] = binary(ops::sub), t["mul"] = binary(ops::mul);
  t["div"] = binary(ops::div), t["maximum"] = binary(ops::maximum), t["minimum"] = binary(ops::minimum);
  t["pow"] = binary([](const Tensor& a, const Tensor& b) { return ops::pow(a, b); });
  t["pow_scalar"] = [](const Outputs& in, const json& a) { return one(ops::pow(in.at(0), a.at("exponent").get<double>())); };
  t["neg"] = unary(ops::neg), t["exp"] = unary(ops::exp), t["log"] = unary(ops::log);
  t["sqrt"] = unary(ops::sqrt), t["rsqrt"] = unary(ops::rsqrt), t["tanh"] = unary(ops::tanh);
  t["sigmoid"] = unary(ops::sigmoid), t["relu"] = unary(ops::relu), t["abs"] = unary(ops::abs);
  t["sign"] = unary(ops::sign);
  t["gelu"] = [](const Outputs& in, const json& a) { return one(ops::gelu(in.at(0), a.at("approximate"))); };
  t["clamp"] = [](const Outputs& in, const json& a) { return one(ops::clamp(in.at(0), number(a.at("min")), number(a.at("max")))); };
  t["scalar_like"] = [](const Outputs& in, const json& a) { return one(ops::scalar_like(a.at("value"), in.at(0))); };
  t["eq"] = binary(ops::eq), t["ne"] = binary(ops::ne), t["lt"] = binary(ops::lt);
  t["le"] = binary(ops::le), t["gt"] = binary(ops::gt), t["ge"] = binary(ops::ge);
  t["logical_and"] = binary(ops::logical_and), t["logical_not"] = unary(ops::logical_not);
  t["where"] = [](const Outputs& in, const json&) { return one(ops::where(in.at(0), in.at(1), in.at(2))); };
  t["masked_fill"] = [](const Outputs& in, const json& a) {
    return one(ops::masked_fill(in.at(0), in.at(1), number(a.at("value"))));
  };
  // reductions
  t["sum"] = unary([](const Tensor& x) { return ops::sum(x); });
  t["mean"] = unary([](const Tensor& x) { return ops::mean(x); });
  t["sum_dims"] = [](const Outputs& in, const json& a) { return one(ops::sum(in.at(0), a.at("dims"), a.at("keepdim"))); };
  t["mean_dims"] = [](const Outputs& in, const json& a) {
    return one(ops::mean(in.at(0), a.at("dims"), a.at("keepdim")));
  };
  t["var"] = [](const Outputs& in, const json& a) {
    return one(ops::var(in.at(0), a.at("dims"), a.at("keepdim"), a.at("correction")));
  };
  t["max"] = unary([](const Tensor& x) { return ops::max(x); });
  t["min"] = unary([](const Tensor& x) { return ops::min(x); });
  t["max_dim"] = [](const Outputs& in, const json& a) {
    auto [values, indices] = ops::max(in.at(0), a.at("dim"), a.at("keepdim"));
    return Outputs{values, indices};
  };
  t["min_dim"] = [](const Outputs& in, const json& a) {
    auto [values, indices] = ops::min(in.at(0), a.at("dim"), a.at("keepdim"));
    return Outputs{values, indices};
  };
  t["argmax"] = [](const Outputs& in, const json& a) { return one(ops::argmax(in.at(0), a.at("dim"), a.at("keepdim"))); };
  t["sum_to_size"] = [](const Outputs& in, const json& a) { return one(ops::sum_to_size(in.at(0), a.at("sizes"))); };
  t["matmul"] = binary(ops::matmul);
  // shapes and views
  t["view"] = [](const Outputs& in, const json& a) { return one(ops::view(in.at(0), a.at("sizes"))); };
  t["reshape"] = [](const Outputs& in, const json& a) { return one(ops::reshape(in.at(0), a.at("sizes"))); };
  t["permute"] = [](const Outputs& in, const json& a) { return one(ops::permute(in.at(0), a.at("dims"))); };
  t["transpose"] = [](const Outputs& in, const json& a) {
    return one(ops::transpose(in.at(0), a.at("dim0"), a.at("dim1")));
  };
  t["narrow"] = [](const Outputs& in, const json& a) {
    return one(ops::narrow(in.at(0), a.at("dim"), a.at("start"), a.at("length")));
  };
  t["slice"] = [](const Outputs& in, const json& a) {
    return one(ops::slice(in.at(0), a.at("dim"), a.at("start"), a.at("end"), a.at("step")));
  };
  t["select"] = [](const Outputs& in, const json& a) { return one(ops::select(in.at(0), a.at("dim"), a.at("index"))); };
  t["expand"] = [](const Outputs& in, const json& a) { return one(ops::expand(in.at(0), a.at("sizes"))); };
  t["squeeze"] = [](const Outputs& in, const json& a) { return one(ops::squeeze(in.at(0), a.at("dim").get<int64_t>())); };
  t["squeeze_all"] = unary([](const Tensor& x) { return ops::squeeze(x); });
  t["unsqueeze"] = [](const Outputs& in, const json& a) { return one(ops::unsqueeze(in.at(0), a.at("dim"))); };
  t["flatten"] = [](const Outputs& in, const json& a) {
    return one(ops::flatten(in.at(0), a.at("start_dim"), a.at("end_dim")));
  };
  t["contiguous"] = unary(ops::contiguous), t["clone"] = unary(ops::clone);
  t["cat"] = [](const Outputs& in, const json& a) { return one(ops::cat(in, a.at("dim"))); };
  t["stack"] = [](const Outputs& in, const json& a) { return one(ops::stack(in, a.at("dim"))); };
  t["split"] = [](const Outputs& in, const json& a) {
    return ops::split(in.at(0), a.at("split_size").get<int64_t>(), a.at("dim").get<int64_t>());
  };
  t["split_sizes"] = [](const Outputs& in, const json& a) {
    return ops::split(in.at(0), a.at("sizes").get<std::vector<int64_t>>(), a.at("dim").get<int64_t>());
  };
  t["chunk"] = [](const Outputs& in, const json& a) { return ops::chunk(in.at(0), a.at("chunks"), a.at("dim")); };
  t["to_dtype"] = [](const Outputs& in, const json& a) { return one(ops::to_dtype(in.at(0), dtype_named(a.at("dtype")))); };
  t["to_device"] = unary([](const Tensor& x) { return ops::to_device(x, kCPU); });
  // indexing
  t["embedding"] = binary(ops::embedding);
  t["gather"] = [](const Outputs& in, const json& a) { return one(ops::gather(in.at(0), a.at("dim"), in.at(1))); };
  t["scatter_add"] = [](const Outputs& in, const json& a) {
    return one(ops::scatter_add(in.at(0), a.at("dim"), in.at(1), in.at(2)));
  };
  t["one_hot"] = [](const Outputs& in, const json& a) {
    return one(ops::one_hot(in.at(0), a.at("num_classes"), dtype_named(a.at("dtype"))));
  };
  // neural-network functions
  t["softmax"] = [](const Outputs& in, const json& a) { return one(ops::softmax(in.at(0), a.at("dim"))); };
  t["log_softmax"] = [](const Outputs& in, const json& a) { return one(ops::log_softmax(in.at(0), a.at("dim"))); };
  t["layer_norm"] = [](const Outputs& in, const json& a) {
    const Tensor weight = in.size() > 1 ? in[1] : Tensor(), bias = in.size() > 2 ? in[2] : Tensor();
    return one(ops::layer_norm(in.at(0), a.at("normalized_shape"), weight, bias, a.at("eps")));
  };
  t["dropout"] = [](const Outputs& in, const json& a) { return one(ops::dropout(in.at(0), a.at("p"), a.at("training"))); };
  t["scaled_dot_product_attention"] = [](const Outputs& in, const json& a) {
    return one(ops::scaled_dot_product_attention(in.at(0), in.at(1), in.at(2), a.at("causal"), a.at("scale")));
  };
  t["local_attention"] = [](const Outputs& in, const json& a) {
    return one(ops::local_attention(in.at(0), in.at(1), in.at(2), a.at("window"), a.at("scale")));
  };
  t["im2col2d"] = [](const Outputs& in, const json& a) {
    return one(ops::im2col2d(in.at(0), pair(a.at("kernel_size")), pair(a.at("stride")), pair(a.at("padding")),
                             pair(a.at("dilation"))));
  };
  t["col2im2d"] = [](const Outputs& in, const json& a) {
    return one(ops::col2im2d(in.at(0), pair(a.at("output_size")), pair(a.at("kernel_size")), pair(a.at("stride")),
                             pair(a.at("padding")), pair(a.at("dilation"))));
  };
  t["cross_entropy"] = [](const Outputs& in, const json& a) {
    return one(ops::cross_entropy(in.at(0), in.at(1), a.at("ignore_index"), reduction_named(a.at("reduction"))));
  };
  // in-place
  t["adamw_update_"] = adamw, t["sgd_update_"] = sgd;
  t["fill_"] = [](const Outputs& in, const json& a) {
    Tensor x = in.at(0).clone();
    ops::fill_(x, number(a.at("value")));
    return one(x);
  };
  t["copy_"] = [](const Outputs& in, const json&) {
    Tensor dst = in.at(0).clone();
    ops::copy_(dst, in.at(1));
    return one(dst);
  };
  return t;
}

}  // namespace

const std::map<std::string, GoldenOp>& golden_op_table() {
  static const std::map<std::string, GoldenOp> table = make_table();
  return table;
}

}  // namespace ctxpool::testing
