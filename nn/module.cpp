#include "nn/module.h"

#include <set>
#include <sstream>

#include "autograd/grad_mode.h"

namespace ctxpool::nn {

Tensor Module::forward(const Tensor&) {
  detail::fail(type_name_, ": this module has no single-tensor forward()");
}

void Module::check_new_name(const std::string& name) const {
  CTXPOOL_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name_,
                ": invalid name '", name, "' (must be non-empty and without '.')");
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list)
      if (n == name) return true;
    return false;
  };
  CTXPOOL_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name_, ": name '",
                name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  CTXPOOL_CHECK(t.defined() && is_floating(t.dtype()), type_name_, ": parameter '", name,
                "' must be a defined floating tensor");
  if (!t.is_leaf()) t = t.detach();
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [n, t] : named_parameters()) out[n] = t;
  for (auto& [n, t] : named_buffers()) out[n] = t;
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict own = state_dict();
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != t.sizes() || it->second.dtype() != t.dtype()) {
      mismatched.push_back(name + ": checkpoint has " + shape_str(it->second.sizes()) + " " +
                           dtype_name(it->second.dtype()) + ", model has " + shape_str(t.sizes()) +
                           " " + dtype_name(t.dtype()));
    }
  }
  for (const auto& [name, t] : state)
    if (!own.count(name)) unexpected.push_back(name);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  CTXPOOL_CHECK(mismatched.empty(), "load_state_dict (", type_name_, "): shape or dtype mismatch: ",
                join(mismatched));
  CTXPOOL_CHECK(!strict || (missing.empty() && unexpected.empty()), "load_state_dict (", type_name_,
                "): missing keys [", join(missing), "], unexpected keys [", join(unexpected), "]");
  NoGradGuard no_grad;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.set_grad(Tensor());
}

void Module::print(std::ostream& os, int indent) const {
  const std::string pad(indent, ' ');
  os << type_name_ << "(";
  if (params_.empty() && children_.empty()) return void(os << ")");
  os << "\n";
  for (const auto& [n, t] : params_) os << pad << "  " << n << ": " << shape_str(t.sizes()) << "\n";
  for (const auto& [n, m] : children_) {
    os << pad << "  (" << n << "): ";
    m->print(os, indent + 2);
    os << "\n";
  }
  os << pad << ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  m.print(os);
  return os;
}

Module& Module::to(Device device) {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Tensor>> all = named_parameters();
  const auto buffers = named_buffers();
  all.insert(all.end(), buffers.begin(), buffers.end());
  for (auto& [name, t] : all) {
    if (t.device() == device) continue;
    try {
      t.set_data_(t.detach().contiguous().to(device));
    } catch (const Error& e) {
      detail::fail(type_name_, ".to(", device, "): cannot move '", name, "' ", t.sizes(), ": ", e.what());
    }
  }
  return *this;
}

}  // namespace ctxpool::nn
