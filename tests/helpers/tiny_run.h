// A tiny LM run on a synthetic corpus (no data files needed), for the model and trainer tests.
#pragma once
#include <filesystem>
#include <string>

#include <unistd.h>

#include "core/file_io.h"
#include "core/random.h"
#include "models/config.h"

namespace ctxpool::testing {

// Sentences from a tiny grammar: enough structure that a small LM learns it in seconds.
inline std::string synthetic_corpus(int64_t bytes) {
  const char* subjects[] = {"the cat", "a dog", "my friend", "the old man", "a bird"};
  const char* verbs[] = {" sees ", " likes ", " follows ", " hears "};
  const char* objects[] = {"the moon.\n", "a red ball.\n", "the river.\n", "his shadow.\n"};
  Generator g(3);
  std::string s;
  while (static_cast<int64_t>(s.size()) < bytes) {
    double u[3];
    g.uniform(u, 3);
    s += subjects[int(u[0] * 5)];
    s += verbs[int(u[1] * 4)];
    s += objects[int(u[2] * 4)];
  }
  return s;
}

struct TinyRun {
  std::string dir, corpus;
  models::RunConfig cfg;
  explicit TinyRun(const std::string& name, int64_t steps) {
    // The process id keeps concurrent test processes (ctest -j, two checkouts) out of each other's way.
    dir = ::testing::TempDir() + "/ctxpool_" + name + "_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    make_directories(dir);
    corpus = dir + "/corpus.txt";
    write_file_atomic(corpus, synthetic_corpus(40000));
    cfg.model.n_layers = 2;
    cfg.model.d_model = 32;
    cfg.model.n_heads = 2;
    cfg.model.d_mlp = 64;
    cfg.model.context = 32;
    cfg.data.path = corpus;
    cfg.optim.lr = 3e-3;
    cfg.train.steps = steps;
    cfg.train.batch_size = 8;
    cfg.train.eval_interval = 0;
    cfg.train.max_eval_windows = 32;
    cfg.train.log_interval = 1000;
    cfg.train.checkpoint_interval = 0;
    cfg.train.run_dir = dir + "/run";
    cfg.train.threads = 2;
  }
  ~TinyRun() { std::filesystem::remove_all(dir); }
};


}  // namespace ctxpool::testing
