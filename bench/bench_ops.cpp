// Op benchmarks: forward (+ backward where marked) of the ops a transformer LM spends its time in,
// at LM-like sizes. Prints one "name<TAB>milliseconds" line per case (median of the repetitions);
// bench/run_ops.py runs the same cases in PyTorch and prints the ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/parallel.h"
#include "ops/ops.h"

using namespace ctxpool;

namespace {

double median_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

Tensor leaf(const Shape& s) { return randn(s).requires_grad_(true); }

}  // namespace

int main(int argc, char** argv) {
  const std::string only = argc > 1 ? argv[1] : "";
  manual_seed(0);
  struct Case {
    std::string name;
    std::function<void()> fn;
  };
  // Sizes of the base LM config: batch 32 x context 128 tokens, d_model 128, 4 heads, MLP 512.
  const int64_t N = 32 * 128, D = 128, H = 512, V = 65;
  Tensor a512 = randn({512, 512}), b512 = randn({512, 512});
  Tensor x = leaf({N, D}), w1 = leaf({D, H}), hid = leaf({N, H}), bias = leaf({H});
  Tensor ln_w = leaf({D}), ln_b = leaf({D});
  Tensor scores = leaf({32 * 4, 128, 128});
  Tensor q = leaf({32, 4, 128, 32}), k = leaf({32, 4, 128, 32});
  Tensor logits = leaf({N, V});
  Tensor target = ops::argmax(randn({N, V}), 1);
  // Small ConvNet / ViT shapes: a middle 3x3 layer, a first layer on RGB images, a patch embedding.
  Tensor conv_x = leaf({32, 64, 16, 16}), conv_w = leaf({64, 64, 3, 3}), conv_b = leaf({64});
  Tensor rgb = randn({32, 3, 28, 28}), rgb_w = leaf({32, 3, 3, 3}), rgb_b = leaf({32});
  Tensor gray = randn({32, 1, 28, 28}), patch_w = leaf({64, 1, 4, 4}), patch_b = leaf({64});
  // The ConvNet's first stage: batch norm and relu over [128, 16, 28, 28].
  Tensor bn_x = leaf({128, 16, 28, 28}), bn_w = leaf({16}), bn_b = leaf({16});
  Tensor bn_mean = zeros({16}), bn_var = ones({16});
  // The ConvNet's (examples/configs/fmnist_convnet.json) 3x3 convolutions at batch 128, one per stage.
  Tensor s1_x = leaf({128, 16, 28, 28}), s1_w = leaf({16, 16, 3, 3}), s1_b = leaf({16});
  Tensor s2_x = leaf({128, 32, 14, 14}), s2_w = leaf({32, 32, 3, 3}), s2_b = leaf({32});
  Tensor s3_x = leaf({128, 64, 7, 7}), s3_w = leaf({64, 64, 3, 3}), s3_b = leaf({64});
  // First layers (the images need no gradient): Fashion-MNIST's ConvNet, and CIFAR-10's.
  Tensor f1_x = randn({128, 1, 28, 28}), f1_w = leaf({16, 1, 3, 3}), f1_b = leaf({16});
  Tensor c1_x = randn({128, 3, 32, 32}), c1_w = leaf({32, 3, 3, 3}), c1_b = leaf({32});

  std::vector<Case> cases = {
      {"matmul 512x512x512 fwd", [&] { NoGradGuard g; ops::matmul(a512, b512); }},
      {"linear 4096x128 @ 128x512 fwd+bwd", [&] { ops::matmul(x, w1).sum().backward(); }},
      {"bmm attention scores q@k^T fwd+bwd", [&] { ops::matmul(q, k.transpose(-1, -2)).sum().backward(); }},
      {"add bias [4096,512]+[512] fwd+bwd", [&] { ops::add(hid, bias).sum().backward(); }},
      {"gelu tanh [4096,512] fwd+bwd", [&] { ops::gelu(hid, "tanh").sum().backward(); }},
      {"softmax [128,128,128] fwd+bwd", [&] { ops::softmax(scores, -1).mul(scores).sum().backward(); }},
      {"layer_norm [4096,128] fwd+bwd", [&] { ops::layer_norm(x, {D}, ln_w, ln_b).mul(x).sum().backward(); }},
      {"cross_entropy [4096,65] fwd+bwd", [&] { ops::cross_entropy(logits, target).backward(); }},
      {"sum [4096,512] fwd", [&] { NoGradGuard g; ops::sum(hid, {1}); }},
      {"batch_norm train [128,16,28,28] fwd+bwd",
       [&] { ops::batch_norm(bn_x, bn_mean, bn_var, bn_w, bn_b, true).mul(bn_x).sum().backward(); }},
      {"relu [128,16,28,28] fwd+bwd", [&] { ops::relu(bn_x).mul(bn_x).sum().backward(); }},
      {"conv2d [32,64,16,16] 3x3 pad 1 fwd", [&] { NoGradGuard g; ops::conv2d(conv_x, conv_w, conv_b, {1, 1}, {1, 1}); }},
      {"conv2d [32,64,16,16] 3x3 pad 1 fwd+bwd",
       [&] { ops::conv2d(conv_x, conv_w, conv_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d [32,3,28,28] 3x3 pad 1 fwd", [&] { NoGradGuard g; ops::conv2d(rgb, rgb_w, rgb_b, {1, 1}, {1, 1}); }},
      {"conv2d [32,3,28,28] 3x3 pad 1 fwd+bwd", [&] { ops::conv2d(rgb, rgb_w, rgb_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d patches [32,1,28,28] 4x4 stride 4 fwd", [&] { NoGradGuard g; ops::conv2d(gray, patch_w, patch_b, {4, 4}); }},
      {"conv2d patches [32,1,28,28] 4x4 stride 4 fwd+bwd",
       [&] { ops::conv2d(gray, patch_w, patch_b, {4, 4}).sum().backward(); }},
      {"conv2d convnet [128,16,28,28] 16->16 fwd+bwd",
       [&] { ops::conv2d(s1_x, s1_w, s1_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d convnet [128,32,14,14] 32->32 fwd+bwd",
       [&] { ops::conv2d(s2_x, s2_w, s2_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d convnet [128,64,7,7] 64->64 fwd+bwd",
       [&] { ops::conv2d(s3_x, s3_w, s3_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d convnet first [128,1,28,28] 1->16 fwd+bwd",
       [&] { ops::conv2d(f1_x, f1_w, f1_b, {1, 1}, {1, 1}).sum().backward(); }},
      {"conv2d cifar first [128,3,32,32] 3->32 fwd+bwd",
       [&] { ops::conv2d(c1_x, c1_w, c1_b, {1, 1}, {1, 1}).sum().backward(); }},
  };
  std::printf("# ctxpool ops, %d threads\n", get_num_threads());
  for (const Case& c : cases) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    std::printf("%s\t%.3f\n", c.name.c_str(), median_ms(c.fn, 20));
    std::fflush(stdout);
  }
  return 0;
}
