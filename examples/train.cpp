// ctxpool-train: train a model from a JSON config: a language model (model.type transformer_lm) or
// an image classifier (vit, convnet; it reports the test accuracy at the end).
//
//   ctxpool-train --config examples/configs/lm_shakespeare_base.json
//   ctxpool-train --config CONFIG --steps 200 --run-dir runs/try --data my_corpus.txt
//   ctxpool-train --resume --run-dir runs/try          # continue from its latest checkpoint
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "models/checkpoint.h"
#include "models/image_trainer.h"
#include "models/stop_signal.h"
#include "models/trainer.h"
#include "cuda/cuda_api.h"
#include "models/train_utils.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/nccl_communicator.h"

using namespace ctxpool;

namespace {

void usage() {
  std::puts(
      "usage: ctxpool-train --config FILE [options]\n"
      "       ctxpool-train --resume --run-dir DIR [options]\n"
      "options (override the config):\n"
      "  --steps N            total optimizer steps\n"
      "  --data PATH          text corpus (any file of bytes), or the image dataset's directory\n"
      "  --run-dir DIR        where metrics.jsonl and checkpoints go\n"
      "  --eval-interval N    evaluate every N steps (0: at the end)\n"
      "  --log-interval N     print a progress line every N steps\n"
      "  --max-eval-windows N evaluate on at most N validation windows (0: all)\n"
      "  --stop-after N       stop after N steps with a checkpoint (as if interrupted)\n"
      "  --threads N          CPU threads\n"
      "  --device DEV         cpu, cuda or cuda:N (default: the config's train.device, else cpu)\n"
      "  --seed N\n"
      "  --resume             continue from the run directory's latest checkpoint\n"
      "  --overwrite          start afresh in a run directory that holds a run (deletes its checkpoints)\n"
      "  --set KEY=VALUE      any config value, e.g. --set optim.lr=1e-3 --set model.context_pool.window=8\n"
      "  --distributed        data-parallel over the processes of mpirun (the config's\n"
      "                       batch is split over them): mpirun -np 2 ctxpool-train --config F --distributed\n"
      "                       with --device cuda, each process takes the GPU of its local rank (one per GPU), NCCL\n"
      "                       CTXPOOL_DIST_TIMEOUT=S stops the job when a collective waits S seconds (600)\n"
      "Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; --resume continues.");
}

int64_t to_int(const char* flag, const char* v) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  CTXPOOL_CHECK(end != v && *end == '\0' && errno == 0 && n >= 0, "ctxpool-train: ", flag,
                " needs a non-negative integer, got '", v, "'");
  return n;
}

// --set section.key=value (or section.sub.key=value): the value is parsed as JSON when it is valid
// JSON (numbers, true/false, lists), else taken as a string.
void set_override(nlohmann::json& overrides, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  CTXPOOL_CHECK(eq != std::string::npos && eq > 0, "ctxpool-train: --set needs key=value (e.g. optim.lr=1e-3), got '",
                assignment, "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) value = text;
  nlohmann::json* node = &overrides;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1) {
    node = &(*node)[key.substr(start, dot - start)];
    CTXPOOL_CHECK(node->is_null() || node->is_object(), "ctxpool-train: --set ", key, " conflicts with another override");
  }
  CTXPOOL_CHECK(start > 0 && start < key.size(), "ctxpool-train: --set needs section.key=value (e.g. optim.lr=1e-3), got '",
                assignment, "'");
  (*node)[key.substr(start)] = value;
}

int train_image_classifier(const models::RunConfig& cfg, bool resume,
                           const std::shared_ptr<nn::parallel::Communicator>& comm) {
  const bool writer = !comm || comm->rank() == 0;
  models::ImageTrainer trainer(cfg, resume, comm);
  if (trainer.step() >= cfg.train.steps) {
    if (writer)
      std::printf("%s is already trained (%lld steps); evaluating it\n", cfg.train.run_dir.c_str(),
                  static_cast<long long>(trainer.step()));
    const models::Accuracy val = trainer.evaluate_validation(), test = trainer.evaluate_test();  // (collectives)
    if (writer) std::printf("final val_acc %.4f test_acc %.4f (the last weights)\n", val.acc, test.acc);
    return 0;
  }
  if (trainer.step() > 0 && writer)
    std::printf("resuming %s at step %lld\n", cfg.train.run_dir.c_str(), static_cast<long long>(trainer.step()));
  const double acc = trainer.fit();
  if (models::stop_requested()) return 130;  // stopped by Ctrl-C / SIGTERM, checkpoint written
  if (writer) {
    if (!std::isnan(acc)) std::printf("final val_acc %.4f\n", acc);
    if (!std::isnan(trainer.test_result().acc)) std::printf("test_acc %.4f\n", trainer.test_result().acc);
    std::printf("run directory: %s\n", cfg.train.run_dir.c_str());
  }
  return 0;
}

// CTXPOOL_DIST_TIMEOUT in seconds, default 600.
double collective_timeout() {
  const char* env = std::getenv("CTXPOOL_DIST_TIMEOUT");
  if (env == nullptr || *env == '\0') return 600.0;
  char* end = nullptr;
  const double s = std::strtod(env, &end);
  CTXPOOL_CHECK(end != env && *end == '\0' && s > 0, "ctxpool-train: CTXPOOL_DIST_TIMEOUT must be a positive "
                "number of seconds, got '", env, "'");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::shared_ptr<nn::parallel::Communicator> comm;  // with --distributed: the processes of this job
  try {
    std::string config_path, run_dir;
    bool resume = false, distributed = false;
    nlohmann::json overrides = nlohmann::json::object();
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> const char* {
        CTXPOOL_CHECK(i + 1 < argc, "ctxpool-train: ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--help" || a == "-h") return usage(), 0;
      else if (a == "--config") config_path = value();
      else if (a == "--resume") resume = true;
      else if (a == "--distributed") distributed = true;
      else if (a == "--overwrite") overrides["train"]["overwrite"] = true;
      else if (a == "--set") set_override(overrides, value());
      else if (a == "--run-dir") run_dir = value();
      else if (a == "--data") overrides["data"]["path"] = value();
      else if (a == "--steps") overrides["train"]["steps"] = to_int("--steps", value());
      else if (a == "--log-interval") overrides["train"]["log_interval"] = to_int("--log-interval", value());
      else if (a == "--eval-interval") overrides["train"]["eval_interval"] = to_int("--eval-interval", value());
      else if (a == "--max-eval-windows") overrides["train"]["max_eval_windows"] = to_int("--max-eval-windows", value());
      else if (a == "--stop-after") overrides["train"]["stop_after"] = to_int("--stop-after", value());
      else if (a == "--threads") overrides["train"]["threads"] = to_int("--threads", value());
      else if (a == "--device") overrides["train"]["device"] = value();
      else if (a == "--seed") overrides["train"]["seed"] = to_int("--seed", value());
      else {
        usage();
        detail::fail("ctxpool-train: unknown argument '", a, "'");
      }
    }
    CTXPOOL_CHECK(!(resume && overrides.contains("train") && overrides["train"].value("overwrite", false)),
                  "ctxpool-train: --resume continues the run in the run directory and --overwrite deletes it; "
                  "give one of them");
    nlohmann::json config;
    if (!config_path.empty()) {
      config = models::RunConfig::from_file(config_path).to_json();
    } else {
      CTXPOOL_CHECK(resume && !run_dir.empty(), "ctxpool-train: give --config FILE, or --resume with --run-dir DIR");
      config = models::load_checkpoint(run_dir).sidecar.at("config");
      config["train"]["stop_after"] = 0;
    }
    if (!run_dir.empty()) overrides["train"]["run_dir"] = run_dir;
    config.merge_patch(overrides);
    models::RunConfig cfg = models::RunConfig::from_json(config);
    if (!config_path.empty()) cfg.data.base_dir = std::filesystem::path(config_path).parent_path().string();

    if (distributed) {
      comm = nn::parallel::mpi_world(collective_timeout());
      if (cfg.train.device.rfind("cuda", 0) == 0) {  // one GPU per process, its gradients over NCCL
        int device = models::training_device(cfg.train).index;
        if (cfg.train.device == "cuda") {
          const int count = cuda::device_count();
          CTXPOOL_CHECK(count > 0, "ctxpool-train: --device cuda, but ", cuda::device_description(0));
          const int local = nn::parallel::local_rank(comm->rank());
          // NCCL does not support two ranks on one GPU (it may hang): one process per GPU at most.
          CTXPOOL_CHECK(local < count, "ctxpool-train: --distributed --device cuda: this machine runs more "
                        "processes than its ", count, " GPU(s) (local rank ", local, "); start at most one per GPU");
          device = local;
          cfg.train.device = "cuda:" + std::to_string(device);
        }
        comm = nn::parallel::nccl_communicator(comm, device, collective_timeout());
      }
    }
    if (cfg.model.is_image_model()) return train_image_classifier(cfg, resume, comm);
    const bool writer = !comm || comm->rank() == 0;
    models::Trainer trainer(cfg, resume, comm);
    if (trainer.step() >= cfg.train.steps) {
      const double bpc = trainer.evaluate();  // (every process: a collective)
      if (writer)
        std::printf("%s is already trained (%lld steps); evaluating it\nfinal val_bpc %.4f\n",
                    cfg.train.run_dir.c_str(), static_cast<long long>(trainer.step()), bpc);
      return 0;
    }
    if (trainer.step() > 0 && writer)
      std::printf("resuming %s at step %lld\n", cfg.train.run_dir.c_str(), static_cast<long long>(trainer.step()));
    const double bpc = trainer.fit();
    if (models::stop_requested()) return 130;  // stopped by Ctrl-C / SIGTERM, checkpoint written
    if (writer) {
      if (!std::isnan(bpc)) std::printf("final val_bpc %.4f\n", bpc);
      std::printf("run directory: %s\n", cfg.train.run_dir.c_str());
    }
    return 0;
  } catch (const std::exception& e) {  // Error, and anything the library did not turn into one
    // In a distributed job the other processes would wait for this one in their next collective.
    if (comm && comm->size() > 1) comm->abort(std::string("error: ") + e.what());
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
