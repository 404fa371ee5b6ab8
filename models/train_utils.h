// What the language-model trainer (trainer.h) and the image trainer (image_trainer.h) share: the
// optimizer a config describes, the training device, the resume checks, and metrics files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "models/config.h"
#include "nn/module.h"
#include "nn/optim/optimizer.h"

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
void report_stopped(int64_t step, int64_t steps, const std::string& run_dir);

}  // namespace ctxpool::models
