// Run under mpirun (tests/CMakeLists.txt registers it with ctest when MPI is found):
//
//   mpirun -np 2 dist_train_check equivalence float64|float32
//     N processes training one tiny LM with global batch 32 produce the losses of one process with
//     batch 32 over the first 20 steps (float64 to 1e-12, float32 to 1e-5), and the same validation
//     bpc from their split evaluation. Exit status 0 when they do.
//   mpirun -np 2 dist_train_check image-equivalence
//     the same for a tiny ConvNet (float32, as image models train) with batch normalisation (synced
//     over the processes) and random crops and flips: losses over 40 steps to 1e-5, and the best
//     validation and the test accuracy.
//   mpirun -np 2 dist_train_check split-resume
//     the processes see different run directories (one has a checkpoint at step 5, the other none):
//     they must refuse to train, naming the cause, instead of training diverging replicas.
//   mpirun -np 2 dist_train_check hang
//     rank 1 stops responding; rank 0's next collective must stop the job within its timeout (5 s)
//     with an error naming the call, instead of waiting forever.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include "core/file_io.h"
#include "core/parallel.h"
#include "helpers/tiny_images.h"
#include "models/image_trainer.h"
#include "models/trainer.h"
#include "nn/parallel/communicator.h"
#include "ops/ops.h"

using namespace ctxpool;

namespace {

// Sentences from a tiny grammar (the same idea as tests/helpers/tiny_run.h, without GoogleTest).
std::string corpus_text() {
  const char* subjects[] = {"the cat", "a dog", "my friend", "the old man", "a bird"};
  const char* verbs[] = {" sees ", " likes ", " follows ", " hears "};
  const char* objects[] = {"the moon.\n", "a red ball.\n", "the river.\n", "his shadow.\n"};
  std::string s;
  for (int i = 0; s.size() < 30000; ++i) s += std::string(subjects[i % 5]) + verbs[i * 7 % 4] + objects[i * 3 % 4];
  return s;
}

models::RunConfig tiny_config(const std::string& dir, const std::string& dtype) {
  models::RunConfig cfg;
  cfg.model.n_layers = 2;
  cfg.model.d_model = 32;
  cfg.model.n_heads = 2;
  cfg.model.d_mlp = 64;
  cfg.model.context = 16;
  cfg.model.dtype = dtype;
  cfg.model.context_pool.enabled = true;  // its predictor and kernels too
  cfg.model.context_pool.window = 4;
  cfg.data.path = dir + "/corpus.txt";
  cfg.optim.lr = 3e-3;
  cfg.train.steps = 20;
  cfg.train.batch_size = 32;
  cfg.train.eval_interval = 10;
  cfg.train.eval_batch_size = 8;
  cfg.train.max_eval_windows = 40;  // 5 eval batches: uneven over 2 processes on purpose
  cfg.train.log_interval = 10;
  cfg.train.checkpoint_interval = 0;
  cfg.train.run_dir = dir + "/distributed";
  return cfg;
}

// A fresh directory with the corpus, made by rank 0 while the others wait.
std::string prepare(nn::parallel::Communicator& comm, const std::string& name) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("ctxpool_dist_check_" + name)).string();
  if (comm.rank() == 0) {
    std::filesystem::remove_all(dir);
    make_directories(dir);
    write_file_atomic(dir + "/corpus.txt", corpus_text());
  }
  comm.barrier();
  return dir;
}

int equivalence(nn::parallel::Communicator& comm, const std::string& dtype) {
  const std::string dir = prepare(comm, dtype);  // one per dtype: ctest may run both checks at once
  models::RunConfig cfg = tiny_config(dir, dtype);
  models::Trainer together(cfg, false, nn::parallel::mpi_world(120.0));
  together.fit();
  if (comm.rank() != 0) return 0;

  cfg.train.run_dir = dir + "/single";
  models::Trainer alone(cfg);
  alone.fit();
  const double tol = dtype == "float64" ? 1e-12 : 1e-5;
  double worst = 0;
  for (size_t i = 0; i < 20; ++i) {
    const double d = std::abs(together.history().at(i).train_loss - alone.history().at(i).train_loss);
    if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;  // a NaN is the worst of all
  }
  const double val_diff = std::abs(together.history().back().val_bpc - alone.history().back().val_bpc);
  std::printf("%s, %d processes against 1: largest loss difference over 20 steps %.3g (limit %.0e); "
              "validation bpc %.6f vs %.6f\n", dtype.c_str(), comm.size(), worst, tol,
              together.history().back().val_bpc, alone.history().back().val_bpc);
  const bool ok = worst <= tol && val_diff <= tol * 10 && together.history().back().train_loss <
                  together.history().front().train_loss;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

// The largest difference between two runs' per-step losses (read from their metrics files: the image
// trainer keeps no history), NaN counting as the worst.
double largest_loss_difference(const std::string& a, const std::string& b, int64_t steps) {
  auto losses = [](const std::string& path) {
    std::vector<double> out;
    std::istringstream lines(read_file(path));
    for (std::string line; std::getline(lines, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("train_loss")) out.push_back(j["train_loss"].get<double>());
    }
    return out;
  };
  const std::vector<double> la = losses(a), lb = losses(b);
  if (la.size() != static_cast<size_t>(steps) || lb.size() != la.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    const double d = std::abs(la[i] - lb[i]);
    if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
  }
  return worst;
}

int image_equivalence(nn::parallel::Communicator& comm) {
  const std::string dir = prepare(comm, "image");
  models::RunConfig cfg = testing::tiny_image_config("convnet", dir + "/distributed", 40);
  cfg.data.crop_padding = 1;  // augmentation: each process must crop and flip its rows as one process would
  cfg.data.horizontal_flip = true;
  cfg.train.eval_interval = 10;
  cfg.train.eval_batch_size = 48;  // 128 images in 3 batches: uneven over 2 processes on purpose
  cfg.train.keep_best = true;
  models::ImageTrainer together(cfg, testing::block_data(), false, nn::parallel::mpi_world(120.0));
  together.fit();
  if (comm.rank() != 0) return 0;

  cfg.train.run_dir = dir + "/single";
  models::ImageTrainer alone(cfg, testing::block_data());
  alone.fit();
  const double tol = 1e-5;
  const double worst = largest_loss_difference(dir + "/distributed/metrics.jsonl", dir + "/single/metrics.jsonl", 40);
  const models::Accuracy a = together.test_result(), b = alone.test_result();
  std::printf("ConvNet, %d processes against 1: largest loss difference over 40 steps %.3g (limit %.0e); "
              "test accuracy %.4f vs %.4f, test loss %.6f vs %.6f; best validation accuracy %.4f vs %.4f\n",
              comm.size(), worst, tol, a.acc, b.acc, a.loss, b.loss, together.best_val_acc(),
              alone.best_val_acc());
  const bool ok = worst <= tol && a.acc == b.acc && std::abs(a.loss - b.loss) <= tol * 10 &&
                  together.best_val_acc() == alone.best_val_acc() && together.best_step() == alone.best_step() &&
                  a.acc > 0.3;  // and it learned something (chance: 0.1)
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

int split_resume(nn::parallel::Communicator& comm) {
  const std::string dir = prepare(comm, "split_resume");
  models::RunConfig cfg = tiny_config(dir, "float32");
  cfg.train.run_dir = dir + "/rank" + std::to_string(comm.rank());
  if (comm.rank() == 0) {  // a checkpoint at step 5, in rank 0's directory only
    models::RunConfig first = cfg;
    first.train.stop_after = 5;
    first.train.checkpoint_interval = 5;
    models::Trainer(first).fit();
  }
  comm.barrier();
  try {
    models::Trainer resumed(cfg, true, nn::parallel::mpi_world(120.0));
  } catch (const Error& e) {
    std::printf("rank %d refused: %s\n", comm.rank(), e.what());
    return 0;
  }
  std::printf("FAILED: rank %d resumed from a different checkpoint than its peer\n", comm.rank());
  return 1;
}

int hang(nn::parallel::Communicator& comm) {
  comm.barrier();
  if (comm.rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(30));  // "hangs"; killed when rank 0 aborts
    return 0;
  }
  const Tensor t = ones({4}, kFloat64);
  comm.all_reduce_sum(t);  // must abort the job after 5 s
  std::printf("FAILED: the collective returned although rank 1 never joined it\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    set_num_threads(1);
    auto comm = nn::parallel::mpi_world(mode == "hang" ? 5.0 : 120.0);
    if (mode == "equivalence" && argc > 2) return equivalence(*comm, argv[2]);
    if (mode == "image-equivalence") return image_equivalence(*comm);
    if (mode == "split-resume") return split_resume(*comm);
    if (mode == "hang") return hang(*comm);
    std::fprintf(stderr, "usage: mpirun -np 2 dist_train_check equivalence float64|float32 | image-equivalence | "
                         "split-resume | hang\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_train_check: %s\n", e.what());
    return 1;
  }
}
