// Kernel ladder (after llm.c's dev/): for each fused op, the naive version written with plain ops
// beside the fused one. Both run forward + backward on the same inputs; the ladder checks that they
// agree (max |difference| of outputs and input gradients) and times each.
//
//   build/bench/ladder            (CTXPOOL_NUM_THREADS sets the threads)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "nn/context_pool.h"
#include "nn/transformer.h"
#include "ops/ops.h"

using namespace ctxpool;

namespace {

using Version = std::function<Tensor(const std::vector<Tensor>&)>;

double median_ms(const std::function<void()>& fn, int reps = 10) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Output and input gradients of fn for a fixed upstream gradient.
std::vector<Tensor> run(const Version& fn, const std::vector<Tensor>& inputs, const Tensor& upstream) {
  for (const Tensor& x : inputs) x.set_grad(Tensor());
  Tensor y = fn(inputs);
  y.backward(upstream);
  std::vector<Tensor> out{y.detach()};
  for (const Tensor& x : inputs) out.push_back(x.grad());
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return ops::max(ops::abs(ops::sub(a.to(kFloat64), b.to(kFloat64)))).item();
}

void rung(const char* name, const Version& naive, const Version& fused, const std::vector<Tensor>& inputs) {
  const Tensor upstream = randn(fused(inputs).sizes());
  const auto a = run(naive, inputs, upstream), b = run(fused, inputs, upstream);
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, max_abs_diff(a[i], b[i]));
  const double t_naive = median_ms([&] { run(naive, inputs, upstream); });
  const double t_fused = median_ms([&] { run(fused, inputs, upstream); });
  std::printf("| %s | %.3f | %.3f | %.2fx | %.1e |\n", name, t_naive, t_fused, t_naive / t_fused, diff);
}

}  // namespace

int main() {
  manual_seed(0);
  std::printf("threads: %d\n\n| op (fwd+bwd) | naive ms | fused ms | speed-up | max abs diff |\n|---|---:|---:|---:|---:|\n",
              get_num_threads());

  // Causal attention, the LM's shapes: [B=32, heads=4, T=128, 32].
  auto qkv = [] { return randn({32, 4, 128, 32}).requires_grad_(true); };
  rung("causal attention [32,4,128,32]",
       [](const std::vector<Tensor>& in) {
         const Tensor s = ops::mul(ops::matmul(in[0], ops::transpose(in[1], -1, -2)), scalar_tensor(1.0 / std::sqrt(32.0)));
         const Tensor future = ops::gt(ops::unsqueeze(arange(128, kInt64), 0), ops::unsqueeze(arange(128, kInt64), 1));
         return ops::matmul(ops::softmax(s.masked_fill(future, -INFINITY), -1), in[2]);
       },
       [](const std::vector<Tensor>& in) { return ops::scaled_dot_product_attention(in[0], in[1], in[2], true); },
       {qkv(), qkv(), qkv()});

  // LayerNorm over d = 128 of [4096, 128].
  auto x = randn({4096, 128}).requires_grad_(true);
  auto w = ops::add(randn({128}), scalar_tensor(1.0)).detach().requires_grad_(true);
  auto b = randn({128}).requires_grad_(true);
  rung("layer_norm [4096,128]",
       [](const std::vector<Tensor>& in) {
         const Tensor mu = ops::mean(in[0], {-1}, true);
         const Tensor c = ops::sub(in[0], mu);
         const Tensor rstd = ops::rsqrt(ops::add(ops::mean(ops::mul(c, c), {-1}, true), scalar_tensor(1e-5)));
         return ops::add(ops::mul(ops::mul(c, rstd), in[1]), in[2]);
       },
       [](const std::vector<Tensor>& in) { return ops::layer_norm(in[0], {128}, in[1], in[2]); }, {x, w, b});

  // Softmax cross-entropy over 65 classes.
  auto logits = randn({4096, 65}).requires_grad_(true);
  const Tensor target = ops::argmax(randn({4096, 65}), 1);
  rung("cross_entropy [4096,65]",
       [target](const std::vector<Tensor>& in) {
         return ops::neg(ops::mean(ops::gather(ops::log_softmax(in[0], 1), 1, ops::unsqueeze(target, 1))));
       },
       [target](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], target); }, {logits});

  // GELU (tanh) over the MLP's hidden activations, [B*T = 4096, 4d = 512]: written with plain ops
  // (seven elementwise passes forward, their chain backward) against ops::gelu (one pass forward, one
  // fused g * gelu'(x) pass backward).
  auto hidden = randn({4096, 512}).requires_grad_(true);
  rung("gelu tanh [4096,512]",
       [](const std::vector<Tensor>& in) {
         const Tensor& v = in[0];
         const Tensor cube = ops::mul(ops::mul(v, v), v);
         const Tensor inner = ops::mul(ops::add(v, ops::mul(cube, scalar_tensor(0.044715))), scalar_tensor(0.7978845608028654));
         return ops::mul(ops::mul(v, scalar_tensor(0.5)), ops::add(ops::tanh(inner), scalar_tensor(1.0)));
       },
       [](const std::vector<Tensor>& in) { return ops::gelu(in[0], "tanh"); }, {hidden});

  // ContextPool, the LM's shapes: x [B=16, N=256, d=128], K = 16, causal. The naive version is
  // ops::context_pool1d_reference (a dense [B, N, N] weight matrix built with plain ops).
  const std::vector<Tensor> pool_in{randn({16, 256, 128}).requires_grad_(true), randn({16, 256}).requires_grad_(true),
                                    randn({16, 256}).requires_grad_(true)};
  ops::ContextPool1dOptions pool_options;  // K = 16, causal, full
  rung("context_pool1d K=16 [16,256,128]",
       [&](const std::vector<Tensor>& in) { return ops::context_pool1d_reference(in[0], in[1], in[2], pool_options); },
       [&](const std::vector<Tensor>& in) { return ops::context_pool1d(in[0], in[1], in[2], pool_options); }, pool_in);

  // Local (sliding-window) causal attention, W = 32 of T = 512: the naive version builds all T x T
  // scores and masks everything outside the band i - 32 < j <= i; the fused one keeps [T, W].
  {
    auto qkv512 = [] { return randn({16, 4, 512, 32}).requires_grad_(true); };
    const std::vector<Tensor> in{qkv512(), qkv512(), qkv512()};
    const Tensor diff = ops::sub(ops::unsqueeze(arange(512, kInt64), 1), ops::unsqueeze(arange(512, kInt64), 0));  // i - j
    const Tensor outside = ops::logical_not(
        ops::logical_and(ops::ge(diff, ops::scalar_like(0, diff)), ops::lt(diff, ops::scalar_like(32, diff))));
    rung("local attention W=32 [16,4,512,32]",
         [outside](const std::vector<Tensor>& x) {
           const Tensor s = ops::mul(ops::matmul(x[0], ops::transpose(x[1], -1, -2)), scalar_tensor(1.0 / std::sqrt(32.0)));
           return ops::matmul(ops::softmax(s.masked_fill(outside, -INFINITY), -1), x[2]);
         },
         [](const std::vector<Tensor>& x) { return ops::local_attention(x[0], x[1], x[2], 32); }, in);
    // Against full causal attention at the same shape (what local attention replaces).
    const Tensor upstream = randn({16, 4, 512, 32});
    const double t_full = median_ms([&] {
      run([](const std::vector<Tensor>& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2], true); }, in,
          upstream);
    });
    const double t_local = median_ms([&] {
      run([](const std::vector<Tensor>& x) { return ops::local_attention(x[0], x[1], x[2], 32); }, in, upstream);
    });
    std::printf("\nat [16,4,512,32] (fwd+bwd): full causal scaled_dot_product_attention %.3f ms, "
                "local_attention W=32 %.3f ms (%.2fx)\n", t_full, t_local, t_full / t_local);
  }

  // What ContextPool adds to a transformer block (d = 128, 4 heads, MLP 512) at [16, 256, 128].
  {
    const Tensor upstream = randn({16, 256, 128});
    auto block = std::make_shared<nn::TransformerBlock>(nn::TransformerBlockOptions{128, 4, 512});
    auto pool = std::make_shared<nn::ContextPool1d>(128);
    const std::vector<Tensor> x{pool_in[0]};
    const double t_block = median_ms([&] { run([&](const std::vector<Tensor>& in) { return block->forward(in[0]); }, x, upstream); });
    const double t_op = median_ms([&] {
      run([&](const std::vector<Tensor>& in) { return ops::context_pool1d(in[0], in[1], in[2], pool_options); }, pool_in,
          upstream);
    });
    const double t_module = median_ms([&] { run([&](const std::vector<Tensor>& in) { return pool->forward(in[0]); }, x, upstream); });
    std::printf("at [16,256,128] (fwd+bwd): transformer block %.3f ms; context_pool1d op %.3f ms (%.1f%% of the block); "
                "ContextPool1d module with its predictor %.3f ms (%.1f%%)\n",
                t_block, t_op, 100 * t_op / t_block, t_module, 100 * t_module / t_block);
  }
  return 0;
}
