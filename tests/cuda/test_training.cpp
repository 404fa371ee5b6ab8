// Training on the GPU against the CPU, the caching allocator, and moving work between devices. The
// GPU tests skip without a device; the error paths and the allocator's bookkeeping run everywhere.
#include "cuda/block_cache.h"
#include "cuda/cuda_api.h"
#include "helpers/test_utils.h"
#include "helpers/tiny_run.h"
#include "models/trainer.h"
#include "nn/linear.h"

using namespace ctxpool;
using namespace ctxpool::testing;

// The first 20 losses of the base LM (examples/configs/lm_shakespeare_base.json: 4 layers, d 128,
// context 128, batch 32, AdamW) on a synthetic corpus: the same init (made on the CPU, then moved),
// the same batches, so the curves agree to float32 accuracy (the kernels' summation orders differ,
// and the difference grows a little per step).
TEST(CudaTraining, First20LossesOfTheBaseLMMatchTheCpu) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda::device_description(0);
  TinyRun run("cuda_losses", 20);
  models::RunConfig base = models::RunConfig::from_file(CTXPOOL_EXAMPLES_DIR "/configs/lm_shakespeare_base.json");
  base.data = run.cfg.data;
  base.train.steps = 20;
  base.train.eval_interval = 0;
  base.train.checkpoint_interval = 0;
  base.train.log_interval = 1000;
  base.train.threads = 0;
#ifdef CTXPOOL_CUDA_EMULATOR
  // On the CPU emulator (tests/emulator) a full-size step takes minutes: an eighth of the batch and a
  // quarter of the context, the same model.
  base.train.batch_size = 4;
  base.model.context = 32;
#endif
  std::vector<double> losses[2];
  for (int gpu = 0; gpu < 2; ++gpu) {
    models::RunConfig cfg = base;
    cfg.train.device = gpu ? "cuda" : "cpu";
    cfg.train.run_dir = run.dir + (gpu ? "/gpu" : "/cpu");
    models::Trainer trainer(cfg);
    trainer.fit();
    for (const auto& r : trainer.history()) losses[gpu].push_back(r.train_loss);
  }
  ASSERT_EQ(losses[0].size(), 20u);
  ASSERT_EQ(losses[1].size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_NEAR(losses[1][i], losses[0][i], 2e-3 * (1 + i / 10.0)) << "step " << i + 1;
  EXPECT_LT(losses[1].back(), losses[1].front() - 0.5);  // and it learns
}

TEST(CudaTraining, CheckpointFromGpuResumesOnCpu) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  TinyRun run("cuda_ckpt", 10);
  run.cfg.train.device = "cuda";
  run.cfg.train.checkpoint_interval = 5;
  run.cfg.train.stop_after = 5;
  {
    models::Trainer first(run.cfg);
    first.fit();
  }
  models::RunConfig cpu = run.cfg;
  cpu.train.device = "cpu";
  cpu.train.stop_after = 0;
  models::Trainer resumed(cpu, /*resume=*/true);
  EXPECT_EQ(resumed.step(), 5);
  resumed.fit();
  EXPECT_EQ(resumed.step(), 10);
}

// After a warm-up step, a training loop allocates from the cache only.
TEST(CudaAllocator, SteadyStateMakesNoDeviceMallocs) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  const char* no_caching = std::getenv("CTXPOOL_CUDA_NO_CACHING");
  if (no_caching != nullptr && std::string(no_caching) == "1") GTEST_SKIP() << "CTXPOOL_CUDA_NO_CACHING=1";
  manual_seed(0);
  nn::Linear layer(32, 16);
  layer.to(cuda_device());
  const Tensor x = randn({64, 32}).to(cuda_device());
  auto step = [&] {
    layer.zero_grad();
    ops::sum(ops::relu(layer.forward(x))).backward();
  };
  step();
  step();
  const int64_t mallocs = cuda::memory_stats().device_mallocs;
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(cuda::memory_stats().device_mallocs, mallocs);
  EXPECT_GT(cuda::memory_stats().allocated, 0u);
  EXPECT_GE(cuda::memory_stats().peak_allocated, cuda::memory_stats().allocated);
  EXPECT_GE(cuda::memory_stats().reserved, cuda::memory_stats().allocated);
}

TEST(CudaDevices, MixingDevicesNamesBoth) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  const Tensor a = ones({2, 3}), b = ones({2, 3}).to(cuda_device());
  EXPECT_ERROR_WITH(ops::add(a, b), "add", "cpu", "cuda:0");
  EXPECT_ERROR_WITH(ops::matmul(a, b.transpose(0, 1)), "matmul", "cpu", "cuda:0");
  EXPECT_ERROR_WITH(b.data_ptr<float>(), "data_ptr", "cuda:0", ".cpu()");
}

// ---- everywhere: bookkeeping and errors ----

// Without caching (CTXPOOL_CUDA_NO_CACHING=1) every block has its exact size and goes back when freed.
TEST(BlockCache, WithoutCachingEveryBlockIsExactAndReleased) {
  std::vector<size_t> sizes;
  int releases = 0;
  std::vector<std::unique_ptr<char[]>> arena;
  cuda::RawAllocator raw;
  raw.allocate = [&](size_t n) -> void* {
    sizes.push_back(n);
    arena.push_back(std::make_unique<char[]>(n));
    return arena.back().get();
  };
  raw.release = [&](void*) { ++releases; };
  cuda::BlockCache cache(raw, /*caching=*/false);
  void* a = cache.allocate(100);
  EXPECT_EQ(cache.stats().allocated, 100u);
  cache.deallocate(a);
  EXPECT_EQ(releases, 1);
  void* b = cache.allocate(100);
  EXPECT_EQ(sizes, (std::vector<size_t>{100, 100}));  // not served from a cache
  cache.deallocate(b);
  EXPECT_EQ(cache.stats().allocated, 0u);
  EXPECT_EQ(cache.stats().reserved, 0u);
  EXPECT_EQ(cache.stats().device_mallocs, 2);
  EXPECT_EQ(cache.stats().device_frees, 2);
}

// A fake device with 1000 bytes: reuse by size, out-of-memory retry after emptying the cache, and the
// error when even that fails.
TEST(BlockCache, ReusesBlocksAndRetriesOnceWhenOutOfMemory) {
  size_t used = 0;
  int mallocs = 0;
  std::vector<std::unique_ptr<char[]>> arena;
  cuda::RawAllocator raw;
  raw.allocate = [&](size_t n) -> void* {
    if (used + n > 2048) return nullptr;
    used += n;
    ++mallocs;
    arena.push_back(std::make_unique<char[]>(n));
    return arena.back().get();
  };
  raw.release = [&](void*) { used -= 512; };  // every block below is 512 bytes
  raw.describe = [] { return std::string("fake:0"); };
  cuda::BlockCache cache(raw);
  EXPECT_EQ(cuda::BlockCache::round_size(1), 512u);
  EXPECT_EQ(cuda::BlockCache::round_size(513), 1024u);
  EXPECT_EQ(cuda::BlockCache::round_size((1 << 20) + 1), size_t(2) << 20);  // 2 MiB steps above 1 MiB

  void* a = cache.allocate(100);
  cache.deallocate(a);
  EXPECT_EQ(cache.allocate(300), a);  // same bin: reused, no new malloc
  EXPECT_EQ(mallocs, 1);
  void* b = cache.allocate(500);
  void* c = cache.allocate(500);
  void* d = cache.allocate(500);
  EXPECT_EQ(mallocs, 4);
  EXPECT_EQ(cache.stats().allocated, 2048u);
  EXPECT_EQ(cache.stats().peak_allocated, 2048u);
  cache.deallocate(b);
  cache.deallocate(c);
  // 1024 bytes: no cached block of that size and the fake device is full, so the cache gives its two
  // free 512-byte blocks back and retries.
  void* e = cache.allocate(1000);
  EXPECT_NE(e, nullptr);
  EXPECT_EQ(cache.stats().device_frees, 2);
  EXPECT_EQ(cache.stats().reserved, 2048u);
  EXPECT_ERROR_WITH(cache.allocate(1000), "out of memory", "MiB", "fake:0");
  cache.deallocate(d);
  cache.deallocate(a);
  EXPECT_EQ(cache.stats().allocated, 1024u);
  EXPECT_ERROR_WITH(cache.deallocate(&used), "did not allocate");
}

TEST(Devices, ParseAndAskForAMissingGpu) {
  EXPECT_EQ(parse_device("cpu"), kCPU);
  EXPECT_EQ(parse_device("cuda"), cuda_device(0));
  EXPECT_EQ(parse_device("cuda:3"), cuda_device(3));
  EXPECT_ERROR_WITH(parse_device("gpu"), "'gpu' is not a device", "cuda:N");
  EXPECT_ERROR_WITH(parse_device("cuda:x"), "'cuda:x'");
  // A GPU this machine lacks: any, or the one past the last.
  const int count = cuda::device_count();
  TinyRun run("no_gpu", 5);
  run.cfg.train.device = count == 0 ? "cuda" : "cuda:" + std::to_string(count);
  EXPECT_ERROR_WITH(models::Trainer(run.cfg), "train.device is '" + run.cfg.train.device + "'",
                    std::string(cuda::built_with_cuda() ? "CUDA device(s)" : "built without CUDA"));
  if (count == 0) EXPECT_ERROR_WITH(ones({2}).to(cuda_device()), "cuda");
  // TF32 is a config switch; on the CPU it changes nothing, so a TF32 GPU run can resume there.
  EXPECT_TRUE(models::RunConfig::from_json({{"train", {{"allow_tf32", true}, {"device", "cuda"}}}}).train.allow_tf32);
  EXPECT_TRUE(models::RunConfig::from_json({{"train", {{"allow_tf32", true}}}}).train.allow_tf32);
}

TEST(Devices, ModuleToKeepsTheLayersHandles) {
  manual_seed(0);
  nn::Linear layer(3, 2);
  const Tensor w = layer.weight;
  layer.to(kCPU);  // a no-op on the same device
  EXPECT_EQ(w.impl(), layer.weight.impl());
  // set_data_ swaps the data under every handle and drops the gradient.
  ops::sum(layer.forward(ones({1, 3}))).backward();
  ASSERT_TRUE(w.grad().defined());
  layer.weight.set_data_(zeros({2, 3}));
  EXPECT_FALSE(w.grad().defined());
  expect_values(w, std::vector<double>(6, 0.0));
  EXPECT_TRUE(w.requires_grad());
  EXPECT_ERROR_WITH(layer.weight.set_data_(zeros({3, 2})), "set_data_", "[2, 3]");
  if (!ops::cuda_is_available()) return;
  layer.to(cuda_device());
  EXPECT_TRUE(w.is_cuda());  // the handle taken before the move sees the new device
  layer.to(kCPU);
  expect_values(w, std::vector<double>(6, 0.0));
}

// Conversions every backend shares (core/dtype.h convert_to): to bool means != 0, as in PyTorch.
TEST(Devices, ToBoolMeansNonZeroOnEveryDevice) {
  const Tensor x = tensor({0.5, -1.0, NAN, 0.0, 2.0}, {5}, kFloat32);
  expect_values(x.to(kBool).to(kFloat32), {1, 1, 1, 0, 1});
  Tensor flag = zeros({2}, kBool);
  flag.fill_(-1.0);
  expect_values(flag.to(kFloat32), {1, 1});
  if (!ops::cuda_is_available()) return;
  expect_values(x.to(cuda_device()).to(kBool).cpu().to(kFloat32), {1, 1, 1, 0, 1});
}

// Views leave the GPU whole, and a gradient that comes back as a broadcast view crosses too.
TEST(CudaDevices, ViewsAndBroadcastGradientsCrossDevices) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  const Tensor h = arange(6, kFloat32).reshape({2, 3});
  expect_values(h.to(cuda_device()).transpose(0, 1).cpu(), {0, 3, 1, 4, 2, 5});
  Tensor x = param({3});
  ops::sum(x.to(cuda_device())).backward();  // sum's backward is an expanded (stride 0) CUDA tensor
  expect_values(x.grad(), {1, 1, 1});
}
