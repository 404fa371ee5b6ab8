#include "autograd/hooks.h"

#include <algorithm>
#include <atomic>

namespace ctxpool::autograd {

HookId register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void()> fn) {
  CTXPOOL_CHECK(leaf.defined() && leaf.requires_grad() && !leaf.grad_fn(), "register_post_accumulate_grad_hook: "
                "expected a leaf that requires grad (a parameter), got ",
                !leaf.defined() ? "an undefined tensor" : leaf.grad_fn() ? "the result of an op" : "a tensor that "
                "does not require grad", leaf.defined() ? detail::str_cat(" of shape ", leaf.sizes()) : "");
  CTXPOOL_CHECK(fn != nullptr, "register_post_accumulate_grad_hook: the hook is empty");
  static std::atomic<HookId> next_id{1};
  const HookId id = next_id++;
  leaf.get()->post_accumulate_grad_hooks.emplace_back(id, std::move(fn));
  return id;
}

void remove_post_accumulate_grad_hook(const Tensor& leaf, HookId id) {
  CTXPOOL_CHECK(leaf.defined(), "remove_post_accumulate_grad_hook: the tensor is undefined");
  auto& hooks = leaf.get()->post_accumulate_grad_hooks;
  const auto it = std::find_if(hooks.begin(), hooks.end(), [id](const auto& h) { return h.first == id; });
  CTXPOOL_CHECK(it != hooks.end(), "remove_post_accumulate_grad_hook: the tensor of shape ", leaf.sizes(),
                " has no hook ", id);
  hooks.erase(it);
}

}  // namespace ctxpool::autograd
