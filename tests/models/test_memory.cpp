// The CPU allocator in a training loop (issue 11): after the first steps every block comes from its
// cache (no new system allocations), and what live tensors hold returns to the same level each step
// (nothing leaks from one step into the next).
#include "core/allocator.h"
#include "helpers/test_utils.h"
#include "models/transformer_lm.h"
#include "nn/optim/adamw.h"

using namespace ctxpool;
using namespace ctxpool::testing;

TEST(CpuMemory, SteadyTrainingStepsAllocateNothingNew) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the cache is off under AddressSanitizer, so that it sees every allocation";
#endif
  models::ModelConfig cfg;
  cfg.vocab_size = 17;
  cfg.n_layers = 2;
  cfg.d_model = 16;
  cfg.n_heads = 2;
  cfg.d_mlp = 32;
  cfg.context = 12;
  cfg.context_pool.enabled = true;  // its kernels and predictor too
  cfg.context_pool.window = 4;
  manual_seed(3);
  models::TransformerLM model(cfg);
  nn::optim::AdamW opt(model.parameters(), {1e-3, 0.9, 0.99, 1e-8, 0.1});
  std::vector<int64_t> tokens(4 * 12), next(4 * 12);
  for (int64_t i = 0; i < 48; ++i) tokens[i] = (i * 5) % 17, next[i] = (i * 5 + 1) % 17;
  const Tensor x = from_vector(tokens, {4, 12}, kInt64);
  const Tensor y = from_vector(next, {48}, kInt64);
  const auto step = [&] {
    const Tensor loss = ops::cross_entropy(model.forward(x).reshape({-1, 17}), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  const CpuMemoryStats before = cpu_memory_stats();
  for (int i = 0; i < 3; ++i) step();
  const CpuMemoryStats after = cpu_memory_stats();
  EXPECT_EQ(after.system_allocs, before.system_allocs) << "steps 4-6 took new blocks from the C library";
  EXPECT_GT(after.cache_hits, before.cache_hits);
  EXPECT_EQ(after.allocated, before.allocated) << "live bytes grew from one step to the next";
  EXPECT_GE(after.peak_allocated, after.allocated);
}

TEST(CpuMemory, CountersFollowAllocationsAndFrees) {
  const CpuMemoryStats start = cpu_memory_stats();
  {
    const Tensor t = empty({1000}, kFloat32);  // 4000 B, rounded to 4032
    EXPECT_EQ(cpu_memory_stats().allocated, start.allocated + 4032);
  }
  EXPECT_EQ(cpu_memory_stats().allocated, start.allocated);
  reset_cpu_peak_memory();
  EXPECT_EQ(cpu_memory_stats().peak_allocated, cpu_memory_stats().allocated);
}
