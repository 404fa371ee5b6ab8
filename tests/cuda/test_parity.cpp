// CPU / CUDA parity, one table: each case builds its inputs on the CPU, runs forward and backward on
// the CPU and on cuda:0 (the same inputs, copied), and compares the output and every input gradient
// with |gpu - cpu| <= atol + rtol |cpu|. One ctest entry per case (Case/Parity.Matches/<name>).
// Without a GPU every case is skipped; a case whose op has no CUDA kernel yet is skipped saying so,
// so the skip list is the to-do list.
#include <cmath>
#include <cstdlib>
#include <functional>

#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"
#include "nn/adaptive_span.h"

using namespace ctxpool;
using namespace ctxpool::testing;

namespace {

using Inputs = std::vector<Tensor>;

struct ParityCase {
  std::string name;
  std::function<Inputs()> make;                 // CPU inputs; floating ones that need grads require grad
  std::function<Tensor(const Inputs&)> run;     // the op(s) under test
  double rtol = 1e-5, atol = 1e-6;              // float32, STYLE.md
  bool tf32 = false;                            // the GPU run with cuda::set_allow_tf32(true)
  bool tf32_must_show = false;                  // and its output must differ beyond float32 rounding
};

// gtest prints a case by its name (not its bytes).
void PrintTo(const ParityCase& pc, std::ostream* os) { *os << pc.name; }

// float32 inputs, seeded per case so the CPU and GPU runs see the same numbers.
Tensor f32(const Shape& s) { return randn(s, TensorOptions(kFloat32).requires_grad(true)); }
// Uniform in [0.5, 1.5): away from the poles of log, rsqrt and division.
Tensor positive(const Shape& s) {
  return ops::add(rand(s, kFloat32), scalar_tensor(0.5, kFloat32)).requires_grad_(true);
}
// int64 uniform in [0, n).
Tensor indices(const Shape& s, int64_t n) {
  return ops::clamp(ops::mul(rand(s, kFloat64), scalar_tensor(double(n), kFloat64)), 0, n - 0.5).to(kInt64);
}

std::vector<ParityCase> cases() {
  using namespace ctxpool::ops;
  std::vector<ParityCase> c;
  auto add_case = [&](std::string name, std::function<Inputs()> make, std::function<Tensor(const Inputs&)> run,
                 double rtol = 1e-5, double atol = 1e-6) {
    c.push_back({std::move(name), std::move(make), std::move(run), rtol, atol});
  };
  auto two = [](Shape a, Shape b) { return [a, b] { return Inputs{f32(a), f32(b)}; }; };
  auto one = [](Shape a) { return [a] { return Inputs{f32(a)}; }; };

  // ---- elementwise, with broadcasting and views ----
  add_case("add_broadcast", two({4, 1, 5}, {3, 5}), [](const Inputs& x) { return add(x[0], x[1]); });
  add_case("sub", two({3, 5}, {3, 5}), [](const Inputs& x) { return sub(x[0], x[1]); });
  add_case("mul_transposed", two({5, 3}, {3, 5}), [](const Inputs& x) { return mul(transpose(x[0], 0, 1), x[1]); });
  add_case("div", [] { return Inputs{f32({4, 6}), positive({6})}; }, [](const Inputs& x) { return div(x[0], x[1]); });
  add_case("pow", [] { return Inputs{positive({7}), f32({7})}; }, [](const Inputs& x) { return pow(x[0], x[1]); });
  // Integer powers are exact on the CPU (glibc's pow); the GPU multiplies them out (up to 6^8).
  add_case("pow_int64", [] { return Inputs{indices({40}, 7), indices({40}, 9)}; },
           [](const Inputs& x) { return pow(x[0], x[1]).to(kFloat32); }, 0.0, 0.0);
  add_case("maximum_minimum", two({6}, {6}), [](const Inputs& x) { return add(maximum(x[0], x[1]), minimum(x[0], x[1])); });
  add_case("unary_chain", one({33}), [](const Inputs& x) {
    return add(add(tanh(x[0]), sigmoid(x[0])), add(relu(x[0]), add(abs(x[0]), neg(exp(x[0])))));
  });
  add_case("log_sqrt_rsqrt", [] { return Inputs{positive({40})}; },
      [](const Inputs& x) { return add(log(x[0]), add(sqrt(x[0]), rsqrt(x[0]))); });
  add_case("gelu_erf", one({50}), [](const Inputs& x) { return gelu(x[0]); });
  add_case("gelu_tanh", one({50}), [](const Inputs& x) { return gelu(x[0], "tanh"); });
  add_case("clamp", one({30}), [](const Inputs& x) { return clamp(x[0], -0.5, 0.7); });
  add_case("where_compare", two({4, 5}, {5}), [](const Inputs& x) { return where(gt(x[0], x[1]), x[0], mul(x[1], x[1])); });
  add_case("masked_fill", one({3, 4}), [](const Inputs& x) { return masked_fill(x[0], lt(x[0], scalar_like(0, x[0])), 2.0); });
  add_case("to_float64_and_back", one({3, 4}), [](const Inputs& x) { return mul(x[0].to(kFloat64), x[0].to(kFloat64)).to(kFloat32); });
  add_case("contiguous_of_permute", one({2, 3, 4}), [](const Inputs& x) { return contiguous(permute(x[0], {2, 0, 1})); });
  add_case("cat_slice", two({2, 3}, {4, 3}), [](const Inputs& x) { return cat({x[0], slice(x[1], 0, 1, 4, 2)}, 0); });
  add_case("expand_sum", one({3, 1}), [](const Inputs& x) { return sum(expand(x[0], {3, 4}), {0}); });

  // ---- reductions ----
  add_case("sum_all", one({17, 9}), [](const Inputs& x) { return sum(x[0]); });
  add_case("sum_dims_keepdim", one({4, 5, 6}), [](const Inputs& x) { return sum(x[0], {0, 2}, true); });
  add_case("mean_var", one({6, 7}), [](const Inputs& x) { return add(mean(x[0], {1}), var(x[0], {1})); });
  add_case("max_min_dim", one({5, 8}), [](const Inputs& x) {
    return add(max(x[0], 1).first, min(x[0], 0).first.sum());
  });
  add_case("argmax", one({5, 8}), [](const Inputs& x) { return argmax(x[0], 1).to(kFloat32); });
  // Few long rows: the two-pass reductions (chunks of 8192 columns, then the partials).
  add_case("sum_all_long", one({3, 40000}), [](const Inputs& x) { return sum(x[0]); });
  add_case("max_argmax_long_rows", one({2, 50000}), [](const Inputs& x) {
    return add(max(x[0], 1).first, argmax(x[0], 1).to(kFloat32));
  });

  // ---- matmul (cuBLAS: float32 results differ from BLAS in the last bits) ----
  add_case("matmul_2d", two({7, 5}, {5, 3}), [](const Inputs& x) { return matmul(x[0], x[1]); }, 1e-5, 1e-5);
  add_case("matmul_batched_broadcast", two({2, 1, 3, 4}, {5, 4, 6}), [](const Inputs& x) { return matmul(x[0], x[1]); },
      1e-5, 1e-5);
  add_case("matmul_transposed_operands", two({4, 3}, {5, 4}),
      [](const Inputs& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }, 1e-5, 1e-5);
  add_case("matmul_vector", two({6}, {6, 2}), [](const Inputs& x) { return matmul(x[0], x[1]); }, 1e-5, 1e-5);
  // TF32 (train.allow_tf32): inputs rounded (or truncated) to 10 mantissa bits, so rtol 1e-3
  // (STYLE.md) and an atol of 5e-3 sqrt(K) for sums of K products of unit-size numbers, K the largest
  // product of forward and backward (here the weight gradient's, 3 x 40 = 120).
  add_case("matmul_tf32", two({3, 40, 96}, {96, 48}), [](const Inputs& x) { return matmul(x[0], x[1]); }, 1e-3, 5.5e-2);
  c.back().tf32 = true;
  c.back().tf32_must_show = true;  // cuBLAS's TF32 math mode does use TF32 on Ampere and later

  // ---- neural-network functions ----
  add_case("softmax", one({6, 10}), [](const Inputs& x) { return softmax(x[0], -1); });
  add_case("log_softmax_dim0", one({6, 10}), [](const Inputs& x) { return log_softmax(x[0], 0); });
  // Longer rows: the row kernels' blocks grow with the row (32 threads up to 256; here 64, 128, 256).
  add_case("softmax_200_columns", one({4, 200}), [](const Inputs& x) { return softmax(x[0], -1); });
  add_case("layer_norm_400_columns", [] { return Inputs{f32({3, 400}), f32({400}), f32({400})}; },
           [](const Inputs& x) { return layer_norm(x[0], {400}, x[1], x[2]); }, 1e-5, 1e-5);
  add_case("log_softmax_long_rows", one({3, 1500}), [](const Inputs& x) { return log_softmax(x[0], -1); });
  add_case("layer_norm_long_rows", [] { return Inputs{f32({5, 700}), f32({700}), f32({700})}; },
           [](const Inputs& x) { return layer_norm(x[0], {700}, x[1], x[2]); }, 1e-5, 1e-5);
  add_case("layer_norm_affine", [] { return Inputs{f32({4, 3, 16}), f32({16}), f32({16})}; },
      [](const Inputs& x) { return layer_norm(x[0], {16}, x[1], x[2]); });
  add_case("layer_norm_plain", one({5, 32}), [](const Inputs& x) { return layer_norm(x[0], {32}); });
  add_case("cross_entropy_ignore", [] {
        Tensor t = indices({12}, 7);
        t = where(eq(t, scalar_like(3, t)), scalar_like(-100, t), t);  // some rows ignored
        return Inputs{f32({12, 7}), t};
      },
      [](const Inputs& x) { return cross_entropy(x[0], x[1]); });
  add_case("cross_entropy_wide", [] { return Inputs{f32({6, 2000}), indices({6}, 2000)}; },
      [](const Inputs& x) { return cross_entropy(x[0], x[1]); });
  add_case("cross_entropy_sum", [] { return Inputs{f32({9, 5}), indices({9}, 5)}; },
      [](const Inputs& x) { return cross_entropy(x[0], x[1], -100, Reduction::Sum); });
  add_case("embedding", [] { return Inputs{f32({11, 6}), indices({4, 5}, 11)}; },
      [](const Inputs& x) { return embedding(x[0], x[1]); });
  add_case("gather_scatter_add", [] { return Inputs{f32({4, 6}), indices({4, 3}, 6), f32({4, 3})}; },
      [](const Inputs& x) { return add(sum(gather(x[0], 1, x[1])), scatter_add(x[0], 1, x[1], x[2])); });
  // The adaptive-span baseline's mask (nn/adaptive_span.h, built from elementwise ops), with the same
  // z on both devices; the gradient reaches the probabilities through the mask and renormalisation.
  add_case("adaptive_span_mask", one({2, 3, 10, 10}), [](const Inputs& x) {
    manual_seed(5);
    nn::AdaptiveSpanMask mask(3, {/*max_span=*/10, /*ramp=*/3.0, /*init=*/0.4, /*lambda=*/0.0});
    mask.to(x[0].device());
    return mask.forward(softmax(x[0], -1));
  });
  // The fused optimizer updates (no autograd): the updated parameter and state, side by side.
  add_case("adamw_update", [] {
        return Inputs{f32({5, 7}).detach(), f32({5, 7}).detach(), f32({5, 7}).detach(), positive({5, 7}).detach()};
      },
      [](const Inputs& x) {
        const Tensor p = x[0].clone(), m = x[2].clone(), v = x[3].clone();
        adamw_update_(p, x[1], m, v, {/*lr=*/1e-2, 0.9, 0.99, 1e-8, /*weight_decay=*/0.1, /*step=*/3});
        return cat({p, m, v}, 0);
      });
  add_case("sgd_nesterov_update", [] { return Inputs{f32({9}).detach(), f32({9}).detach(), f32({9}).detach()}; },
      [](const Inputs& x) {
        const Tensor p = x[0].clone(), buf = x[2].clone();
        sgd_update_(p, x[1], buf, {/*lr=*/0.1, /*momentum=*/0.9, /*weight_decay=*/0.01, /*nesterov=*/true});
        return cat({p, buf}, 0);
      });
  add_case("dropout", one({64}), [](const Inputs& x) {
    manual_seed(7);  // the mask comes from the same seeded stream on both devices
    return dropout(x[0], 0.3);
  });

  // ---- attention and the ContextPool family ----
  add_case("attention_causal", [] { return Inputs{f32({2, 3, 9, 8}), f32({2, 3, 9, 8}), f32({2, 3, 9, 4})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-5);
  add_case("attention_full", [] { return Inputs{f32({2, 5, 8}), f32({2, 7, 8}), f32({2, 7, 8})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); }, 1e-5, 1e-5);
  // The fused kernels (ops/cuda/flash_attention.cu) against the CPU's unfused attention: several key
  // tiles, rows past a block's last, T != S, the largest fused head dim, a head too large to fuse
  // (the unfused CUDA path), a transposed (non-contiguous) q, and float64.
  add_case("attention_causal_long", [] { return Inputs{f32({2, 3, 203, 64}), f32({2, 3, 203, 64}), f32({2, 3, 203, 40})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-4);
  add_case("attention_full_t_ne_s", [] { return Inputs{f32({3, 37, 32}), f32({3, 150, 32}), f32({3, 150, 16})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); }, 1e-5, 1e-4);
  add_case("attention_causal_t_gt_s", [] { return Inputs{f32({2, 50, 16}), f32({2, 20, 16}), f32({2, 20, 8})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-4);
  add_case("attention_head_dim_128", [] { return Inputs{f32({1, 2, 40, 128}), f32({1, 2, 40, 128}), f32({1, 2, 40, 128})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-4);
  add_case("attention_head_dim_above_fused", [] { return Inputs{f32({2, 24, 136}), f32({2, 24, 136}), f32({2, 24, 8})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-4);
  // The unfused path's softmax rows at 300 keys (128-thread blocks, causal rows of every length).
  add_case("attention_unfused_300_keys", [] { return Inputs{f32({1, 300, 136}), f32({1, 300, 136}), f32({1, 300, 8})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-5, 1e-4);
  add_case("attention_transposed_q", [] { return Inputs{f32({2, 16, 33}), f32({2, 33, 16}), f32({2, 33, 16})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(transpose(x[0], 1, 2), x[1], x[2], true); }, 1e-5, 1e-4);
  add_case("attention_float64", [] { return Inputs{param({2, 45, 24}), param({2, 45, 24}), param({2, 45, 12})}; },
      [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }, 1e-12, 1e-12);
  add_case("local_attention", [] { return Inputs{f32({2, 2, 12, 8}), f32({2, 2, 12, 8}), f32({2, 2, 12, 4})}; },
      [](const Inputs& x) { return local_attention(x[0], x[1], x[2], 4); }, 1e-5, 1e-5);
  for (auto [mode, causal] : {std::pair{ContextPoolMode::Full, true}, std::pair{ContextPoolMode::Full, false},
                              std::pair{ContextPoolMode::WeightsOnly, true}, std::pair{ContextPoolMode::Uniform, false}}) {
    ContextPool1dOptions o;
    o.window = 5;
    o.causal = causal;
    o.mode = mode;
    add_case(std::string("context_pool1d_") + to_string(mode) + (causal ? "_causal" : "_bidirectional"),
        [] { return Inputs{f32({2, 13, 6}), f32({2, 13}), f32({2, 13})}; },
        [o](const Inputs& x) { return context_pool1d(x[0], x[1], x[2], o); }, 1e-5, 1e-5);
  }
  {
    ContextPool1dOptions wide;  // K >= N: the window covers the whole sequence
    wide.window = 20;
    add_case("context_pool1d_window_beyond_sequence", [] { return Inputs{f32({1, 7, 3}), f32({1, 7}), f32({1, 7})}; },
        [wide](const Inputs& x) { return context_pool1d(x[0], x[1], x[2], wide); }, 1e-5, 1e-5);
    add_case("context_pool1d_one_token", [] { return Inputs{f32({3, 1, 4}), f32({3, 1}), f32({3, 1})}; },
        [](const Inputs& x) { return context_pool1d(x[0], x[1], x[2]); }, 1e-5, 1e-5);
    add_case("context_pool1d_float64", [] {
          return Inputs{param({2, 9, 5}), param({2, 9}), param({2, 9})};
        },
        [](const Inputs& x) { return context_pool1d(x[0], x[1], x[2]); }, 1e-12, 1e-12);
  }
  // Long sequences with wide windows (each key row gathers up to W queries, clipped at both ends) and
  // feature sizes above a warp's width.
  add_case("local_attention_long_window70", [] { return Inputs{f32({2, 300, 40}), f32({2, 300, 40}), f32({2, 300, 36})}; },
      [](const Inputs& x) { return local_attention(x[0], x[1], x[2], 70); }, 1e-5, 1e-5);
  for (bool causal : {true, false}) {
    ContextPool1dOptions o;
    o.window = 40;
    o.causal = causal;
    add_case(std::string("context_pool1d_long_window40_") + (causal ? "causal" : "bidirectional"),
        [] { return Inputs{f32({2, 200, 40}), f32({2, 200}), f32({2, 200})}; },
        [o](const Inputs& x) { return context_pool1d(x[0], x[1], x[2], o); }, 1e-5, 1e-5);
  }
  {
    ContextPool2dOptions o;
    o.window = 3;
    add_case("context_pool2d_12x11_window3", [] { return Inputs{f32({2, 12, 11, 36}), f32({2, 12, 11}), f32({2, 12, 11})}; },
        [o](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], o); }, 1e-5, 1e-5);
  }
  add_case("local_attention_window_beyond_sequence",
      [] { return Inputs{f32({2, 6, 8}), f32({2, 6, 8}), f32({2, 6, 8})}; },
      [](const Inputs& x) { return local_attention(x[0], x[1], x[2], 16); }, 1e-5, 1e-5);
  add_case("local_attention_float64", [] { return Inputs{param({2, 10, 4}), param({2, 10, 4}), param({2, 10, 3})}; },
      [](const Inputs& x) { return local_attention(x[0], x[1], x[2], 3); }, 1e-12, 1e-12);
  add_case("matmul_float64", [] { return Inputs{param({3, 4, 5}), param({5, 2})}; },
      [](const Inputs& x) { return matmul(x[0], x[1]); }, 1e-12, 1e-12);
  add_case("layer_norm_float64", [] { return Inputs{param({6, 8}), param({8}), param({8})}; },
      [](const Inputs& x) { return layer_norm(x[0], {8}, x[1], x[2]); }, 1e-12, 1e-12);
  // ---- pooling and batch norm (each with its own kernels) ----
  add_case("max_pool2d_padded_dilated", one({2, 3, 9, 8}),
      [](const Inputs& x) { return max_pool2d(x[0], {3, 3}, {{2, 2}}, {1, 1}, {2, 1}); });
  add_case("max_pool2d_ceil_unbatched", one({3, 7, 6}),
      [](const Inputs& x) { return max_pool2d(x[0], {2, 3}, {{2, 2}}, {0, 1}, {1, 1}, true); });
  add_case("avg_pool2d_padded", one({2, 3, 7, 7}), [](const Inputs& x) { return avg_pool2d(x[0], {3, 3}, {{2, 2}}, {1, 1}); });
  add_case("avg_pool2d_ceil_exclude_pad", one({2, 2, 7, 6}),
      [](const Inputs& x) { return avg_pool2d(x[0], {3, 2}, {{2, 2}}, {1, 1}, true, false); });
  add_case("adaptive_avg_pool2d", one({2, 3, 7, 5}), [](const Inputs& x) { return adaptive_avg_pool2d(x[0], {3, 2}); });
  // Training: the output plus the updated running statistics (so their update is compared too).
  add_case("batch_norm_training", [] { return Inputs{f32({4, 3, 5, 5}), f32({3}), f32({3})}; },
      [](const Inputs& x) {
        const TensorOptions on_device = TensorOptions(kFloat32).device(x[0].device());
        const Tensor running_mean = zeros({3}, on_device), running_var = ones({3}, on_device);
        const Tensor y = batch_norm(x[0], running_mean, running_var, x[1], x[2], true, 0.1, 1e-5);
        return add(y, reshape(add(running_mean, running_var), {1, 3, 1, 1}));
      });
  add_case("batch_norm_training_many_values_no_affine", one({16, 40, 12, 12}),
      [](const Inputs& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, 1e-5, 1e-5);
  add_case("batch_norm_eval_float64", [] {
        return Inputs{param({3, 4, 6}), rand({4}, kFloat64), ops::add(rand({4}, kFloat64), scalar_tensor(0.5, kFloat64)),
                      param({4}), param({4})};
      },
      [](const Inputs& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4]); }, 1e-12, 1e-12);
  {
    ContextPool2dOptions o2;
    o2.window = 1;
    o2.stride = 2;
    add_case("context_pool2d_strided", [] { return Inputs{f32({2, 5, 6, 4}), f32({2, 5, 6}), f32({2, 3, 3})}; },
             [o2](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], o2); }, 1e-5, 1e-5);
    // K = 2 at stride 1 (windows clipped on every border), d above a warp's width.
    ContextPool2dOptions wide;
    wide.window = 2;
    add_case("context_pool2d_window2", [] { return Inputs{f32({2, 6, 5, 40}), f32({2, 6, 5}), f32({2, 6, 5})}; },
             [wide](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], wide); }, 1e-5, 1e-5);
    ContextPool2dOptions weights_only = wide;
    weights_only.mode = ContextPoolMode::WeightsOnly;
    add_case("context_pool2d_weights_only_float64",
             [] { return Inputs{param({2, 4, 5, 3}), param({2, 4, 5}), param({2, 4, 5})}; },
             [weights_only](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], weights_only); }, 1e-12, 1e-12);
    // eps = 0 and weights whose sum is subnormal (sigmoid(-715)): the weights still normalise, and the
    // slots outside the image stay exactly 0 (1 / Z is inf here; see ops/cpu/context_pool2d.cpp).
    ContextPool2dOptions tiny = o2;
    tiny.eps = 0.0;
    add_case("context_pool2d_subnormal_normaliser_float64",
             [] { return Inputs{param({1, 5, 4, 3}), full({1, 5, 4}, -715.0, kFloat64), param({1, 3, 2})}; },
             [tiny](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], tiny); }, 1e-9, 1e-12);
    ContextPool2dOptions uniform = o2;
    uniform.mode = ContextPoolMode::Uniform;
    add_case("context_pool2d_uniform_strided", [] { return Inputs{f32({1, 7, 7, 6}), f32({1, 7, 7}), f32({1, 4, 4})}; },
             [uniform](const Inputs& x) { return context_pool2d(x[0], x[1], x[2], uniform); }, 1e-5, 1e-5);
  }
  add_case("conv1d_causal_dilated", [] { return Inputs{f32({2, 3, 10}), f32({4, 3, 3}), f32({4})}; },
      [](const Inputs& x) { return conv1d(x[0], x[1], x[2], 4, 0, 2); }, 1e-5, 1e-5);
  // conv2d: cuDNN where the build has it (else im2col2d / col2im2d kernels and cuBLAS).
  add_case("conv2d_3x3_model_shape", [] { return Inputs{f32({8, 16, 14, 14}), f32({32, 16, 3, 3}), f32({32})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }, 1e-5, 1e-4);
  add_case("conv2d_grouped", [] { return Inputs{f32({2, 6, 7, 9}), f32({4, 3, 3, 3})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), {1, 2}, {1, 0}, {1, 1}, 2); }, 1e-5, 1e-5);
  add_case("conv2d_tf32", [] { return Inputs{f32({4, 16, 10, 10}), f32({24, 16, 3, 3}), f32({24})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }, 1e-3, 1e-1);  // K: 4 x 10 x 10
  c.back().tf32 = true;  // (cuDNN may still choose an FMA algorithm: allowed, not required)
  add_case("conv2d_float64", [] { return Inputs{param({2, 3, 6, 6}), param({5, 3, 3, 3}), param({5})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }, 1e-12, 1e-12);
  add_case("conv2d_strided_padded", [] { return Inputs{f32({2, 3, 9, 8}), f32({4, 3, 3, 3}), f32({4})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {2, 1}, {1, 1}); }, 1e-5, 1e-5);
  // The unfold / fold kernels themselves (with cuDNN, conv2d does not reach them).
  add_case("im2col2d_strided_padded_dilated", one({2, 3, 11, 9}),
      [](const Inputs& x) { return im2col2d(x[0], {3, 2}, {2, 1}, {1, 2}, {2, 1}); });
  add_case("col2im2d_strided_padded_dilated", one({2, 3 * 3 * 2, 5 * 12}),
      [](const Inputs& x) { return col2im2d(x[0], {11, 9}, {3, 2}, {2, 1}, {1, 2}, {2, 1}); });
  add_case("conv2d_depthwise_dilated", [] { return Inputs{f32({2, 4, 8, 8}), f32({4, 1, 3, 2}), f32({4})}; },
      [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {2, 1}, {2, 1}, 4); }, 1e-5, 1e-5);
  return c;
}

// The case's inputs on `device`, as fresh leaves (same values, same requires_grad).
Inputs copy_to(const Inputs& inputs, Device device) {
  Inputs out;
  for (const Tensor& t : inputs) {
    Tensor d = t.detach().to(device);
    if (t.requires_grad()) d.requires_grad_(true);
    out.push_back(d);
  }
  return out;
}

struct Result {
  Tensor out;
  std::vector<Tensor> grads;  // undefined where the input has none
};

// Forward, then backward of sum(out * w) with a fixed random w (so every output element matters).
Result forward_backward(const ParityCase& pc, const Inputs& inputs, const Tensor& w_cpu) {
  Result r;
  r.out = pc.run(inputs);
  if (is_floating(r.out.dtype()) && r.out.requires_grad()) {
    ops::sum(ops::mul(r.out, w_cpu.to(r.out.device()))).backward();
  }
  for (const Tensor& t : inputs) r.grads.push_back(t.requires_grad() ? t.grad() : Tensor());
  return r;
}

void expect_close(const Tensor& gpu, const Tensor& cpu, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(gpu.defined(), cpu.defined()) << what;
  if (!cpu.defined()) return;
  ASSERT_TRUE(gpu.is_cuda()) << what << " came back on " << gpu.device();
  ASSERT_EQ(gpu.sizes(), cpu.sizes()) << what;
  const auto g = gpu.cpu().contiguous().to_vector<double>();
  const auto c = cpu.contiguous().to_vector<double>();
  int reported = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const bool both_nan = std::isnan(c[i]) && std::isnan(g[i]);
    if (both_nan || std::abs(g[i] - c[i]) <= atol + rtol * std::abs(c[i])) continue;
    ADD_FAILURE() << what << "[" << i << "]: cuda " << g[i] << " vs cpu " << c[i];
    if (++reported == 5) return;
  }
}

class Parity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(Parity, Matches) {
  const ParityCase& pc = GetParam();
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  manual_seed(1234);
  const Inputs cpu_inputs = pc.make();
  manual_seed(99);
  const Tensor probe = pc.run(copy_to(cpu_inputs, kCPU));
  manual_seed(99);
  const Tensor w = randn(probe.sizes(), probe.dtype() == kFloat64 ? kFloat64 : kFloat32);

  const Result cpu = forward_backward(pc, copy_to(cpu_inputs, kCPU), w);
  Result gpu;
  struct Tf32 {  // this case's setting for its GPU run only, the earlier one back whatever happens
    const bool before = cuda::allow_tf32();
    explicit Tf32(bool on) { cuda::set_allow_tf32(on); }
    ~Tf32() { cuda::set_allow_tf32(before); }
  };
  try {
    Tf32 tf32(pc.tf32);
    gpu = forward_backward(pc, copy_to(cpu_inputs, cuda_device()), w);
  } catch (const Error& e) {
    if (std::string(e.what()).find("not implemented on cuda") != std::string::npos)
      GTEST_SKIP() << "no CUDA kernel yet: " << e.what();
    throw;
  }
  expect_close(gpu.out, cpu.out, pc.rtol, pc.atol, pc.name + " output");
  if (pc.tf32_must_show && cuda::compute_capability(0) >= 80) {  // TF32 really was on: the output differs beyond float32 rounding
    const Tensor diff = ops::abs(ops::sub(gpu.out.cpu(), cpu.out));
    EXPECT_GT(ops::max(diff).item(), 1e-4) << pc.name << ": as close as float32; was TF32 used?";
  }
  for (size_t i = 0; i < cpu.grads.size(); ++i)
    expect_close(gpu.grads[i], cpu.grads[i], pc.rtol, pc.atol, pc.name + " grad of input " + std::to_string(i));
}

INSTANTIATE_TEST_SUITE_P(Case, Parity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<ParityCase>& info) { return info.param.name; });

}  // namespace
