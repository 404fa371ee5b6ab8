// The training loop for language models: batches from a TextCorpus, AdamW (or SGD) with warm-up +
// cosine, gradient clipping, periodic evaluation in bits per character, metrics as JSON lines,
// atomic checkpoints, and exact resumption (same losses, bit for bit, on the same CPU and threads).
#pragma once
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "models/transformer_lm.h"
#include "nn/data/text_corpus.h"
#include "nn/optim/optimizer.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/gradient_reducer.h"

namespace ctxpool::models {

struct StepRecord {
  int64_t step = 0;  // 1-based: the number of optimizer steps done
  double train_loss = 0, lr = 0, grad_norm = 0, ms = 0, tokens_per_s = 0;
  double val_bpc = NAN;  // on evaluation steps
  double aux_loss = NAN;  // the regularisers added to the loss (ContextPool support, adaptive span), if any
  std::vector<std::pair<std::string, double>> diagnostics;  // on log steps: TransformerLM::diagnostics()
};

class Trainer {
 public:
  // With resume, continues from the latest checkpoint in config.train.run_dir (if there is one);
  // the checkpoint's model, data and optimizer settings must match `config`.
  //
  // With a communicator of N > 1 processes (nn/parallel/communicator.h), the N processes train one
  // model: each computes the loss on its 1/N of every global batch (train.batch_size rows, the same
  // batches as one process would draw), gradients are averaged (nn/parallel/data_parallel.h), every
  // process takes the same step, evaluation windows are split over the processes, and only rank 0
  // prints and writes files. Every process must be given the same config.
  explicit Trainer(const RunConfig& config, bool resume = false,
                   std::shared_ptr<nn::parallel::Communicator> comm = nullptr);

  // Trains up to train.steps (or stops after train.stop_after steps, with a checkpoint). Returns the
  // last validation bits per character.
  double fit();
  // Mean cross-entropy in bits per character over all non-overlapping context windows of the split
  // (at most train.max_eval_windows of them, if set).
  double evaluate(nn::data::Split split = nn::data::Split::Validation);
  // The same over at most max_windows windows (0: all of them).
  double evaluate(nn::data::Split split, int64_t max_windows);

  // With train.keep_best: the best validation bpc so far and its step (NaN and 0 before any
  // evaluation). Its weights are in run_dir/best.safetensors; load_best() puts them in the model.
  double best_val_bpc() const { return best_val_; }
  int64_t best_step() const { return best_step_; }
  void load_best();

  TransformerLM& model() { return *model_; }
  const nn::data::TextCorpus& corpus() const { return corpus_; }
  const std::vector<StepRecord>& history() const { return history_; }
  int64_t step() const { return step_; }
  const RunConfig& config() const { return config_; }

 private:
  void save_checkpoint(double last_val_bpc);
  void restore(const Checkpoint& ckpt);
  void write_metrics(const StepRecord& r);
  void save_best(double val_bpc);

  bool is_writer() const { return comm_->rank() == 0; }  // rank 0 prints, logs and checkpoints

  RunConfig config_;
  std::shared_ptr<nn::parallel::Communicator> comm_;
  Device device_;  // config_.train.device: the model, its batches and the optimizer state live there
  nn::data::TextCorpus corpus_;
  std::shared_ptr<TransformerLM> model_;
  std::unique_ptr<nn::optim::Optimizer> optimizer_;
  std::unique_ptr<nn::parallel::GradientReducer> reducer_;  // averages gradients over comm_
  Generator data_gen_;
  int64_t step_ = 0;
  double best_val_ = NAN;
  int64_t best_step_ = 0;
  std::vector<StepRecord> history_;
  std::string metrics_path_;
};

// A data path as given (absolute, or relative to the working directory), else relative to the
// config file's directory `base_dir`, else to the working directory's parents ("../shared/data/..."
// from build/ works too); an error listing the tried paths when none exists. Trainers print the one
// they use.
std::string resolve_data_path(const std::string& path, const std::string& base_dir = "");

}  // namespace ctxpool::models
