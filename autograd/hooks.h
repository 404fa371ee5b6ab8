// Hooks on leaf tensors, as PyTorch's Tensor.register_post_accumulate_grad_hook: `fn` runs right
// after a backward pass has accumulated the leaf's gradient into leaf.grad(), which is then final
// for that pass (the engine sums every path into a leaf before accumulating it once). Data-parallel
// training uses it to send a bucket of gradients to the other processes while backward goes on
// computing the rest (nn/parallel/gradient_reducer.h).
//
//   const auto id = autograd::register_post_accumulate_grad_hook(w, [&] { ready.push_back("w"); });
//   loss.backward();                                   // ...runs the hook once, after w.grad() is set
//   autograd::remove_post_accumulate_grad_hook(w, id);
//
// A hook must not hold the leaf itself (a tensor owning a function that owns it would never be
// freed); capture an index or a pointer to something that outlives the hook.
#pragma once
#include <cstdint>
#include <functional>

#include "core/tensor.h"

namespace ctxpool::autograd {

using HookId = uint64_t;

// leaf: a tensor that requires grad and has no grad_fn (a parameter). Hooks run in registration order.
HookId register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void()> fn);
// Removes the hook; an id the leaf does not have is an error.
void remove_post_accumulate_grad_hook(const Tensor& leaf, HookId id);

}  // namespace ctxpool::autograd
