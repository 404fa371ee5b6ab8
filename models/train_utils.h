// What the language-model trainer (trainer.h) and the image trainer (image_trainer.h) share: the
// optimizer a config describes, the training device, the resume checks, and metrics files.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "models/config.h"
#include "nn/module.h"
#include "nn/optim/optimizer.h"
#include "nn/parallel/communicator.h"

namespace ctxpool::models {

// AdamW or SGD over the model's parameters, with weight decay on matrices only if asked (not on
// biases and norm scales) and never on adaptive spans (their own penalty is their regulariser).
std::unique_ptr<nn::optim::Optimizer> make_optimizer(const OptimConfig& o, nn::Module& model);

// train.device, checked: a CUDA device needs a CUDA build and must exist on this machine.
Device training_device(const TrainConfig& t);

// A resumed run must train the same model the same way: the model, optimizer, data, batch size and
// seed of `mine` must match the checkpoint's `saved` config (else a clear error).
void check_resume_config(const RunConfig& saved, const RunConfig& mine, const std::string& run_dir);

// Makes run_dir, removes temporary files an interrupted save left there, and, for a new run
// (resume false), refuses a directory that holds a run unless train.overwrite, which deletes that
// run's checkpoints, metrics and best weights (nothing else).
void prepare_run_dir(const TrainConfig& t, bool resume);

// Keeps the metrics lines of steps <= step (the run that stopped may have written later ones, which
// the resumed run redoes).
void truncate_metrics(const std::string& metrics_path, int64_t step);
void append_metrics(const std::string& metrics_path, const nlohmann::json& record);

nlohmann::json generator_json(const Generator& g);

// A NaN or infinite loss or gradient norm at `step` (1-based): an error that names the step and the
// last good checkpoint (train.skip_nonfinite skips such steps instead).
[[noreturn]] void fail_nonfinite(int64_t step, double loss, double grad_norm, const std::string& run_dir);
// The message after a stop by Ctrl-C or SIGTERM (models/stop_signal.h): where the checkpoint is and
// how to resume.
// Refuses to let a checkpoint hold NaN or inf weights (an update can overflow with a finite loss and
// gradient): a clear error naming the step and the last good checkpoint.
void check_finite_parameters(const std::vector<Tensor>& params, int64_t step, const std::string& run_dir);

// The best validation value so far of a run (lower is better for bpc, higher for accuracy).
struct BestValidation {
  bool higher_is_better = false;
  double value = NAN;
  int64_t step = 0;
  void offer(double v, int64_t at) {
    if (std::isnan(v)) return;
    if (std::isnan(value) || (higher_is_better ? v > value : v < value)) value = v, step = at;
  }
};

// The one-line end of fit(): steps, wall time, final and best validation (`metric`: "val bpc" or
// "val acc"; NaN values are left out), `extra` (e.g. " | test acc 0.91"), where the checkpoints are;
// a run that stopped before train.steps (train.stop_after) says how to resume instead.
void report_done(int64_t first_step, int64_t step, int64_t steps, double minutes, const char* metric,
                 double final_value, const BestValidation& best, const std::string& extra, const std::string& run_dir);

void report_stopped(int64_t step, int64_t steps, const std::string& run_dir);

// ---- data parallelism (nn/parallel), as both trainers do it ----
// A config that cannot train across comm's processes on `device`: a clear error (no communicator for
// the device, a batch that does not split evenly, dropout).
void check_distributed_config(const RunConfig& config, const nn::parallel::Communicator& comm, const Device& device);
// Every process must start at the same step (resumed from one checkpoint in one shared run
// directory): a clear error otherwise.
void check_same_start(nn::parallel::Communicator& comm, int64_t step, const std::string& run_dir);
// The mean over the processes of `loss` (each its shard's mean: together the whole batch's), and
// whether any process was asked to stop. One collective; with one process, the values as given.
struct StepAgreement {
  double loss = NAN;
  bool stop = false;
};
StepAgreement agree_on_step(nn::parallel::Communicator& comm, double loss, bool stop);

}  // namespace ctxpool::models
