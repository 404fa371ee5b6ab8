// The training loop for image classifiers (ViT, ConvNet): epochs of shuffled, augmented batches
// prepared on a background thread, AdamW (or SGD) with warm-up + cosine, gradient clipping,
// periodic evaluation (loss and accuracy on the held-out validation images), metrics as JSON lines,
// atomic checkpoints and exact resumption, and at the end the test accuracy of the weights with the
// best validation accuracy (train.keep_best) or of the last ones, written to metrics.jsonl as test_acc.
// Step s trains batch s mod B of epoch s / B (B batches per epoch): the data order and augmentation
// depend on the seed and the step only.
//
// With a communicator of N > 1 processes (nn/parallel/communicator.h), the N processes train one
// model as the language-model Trainer does: each trains on its 1/N of every global batch (the same
// images and augmentation as one process would use), gradients are averaged, batch normalisation uses
// the whole batch's statistics (nn/parallel/sync_batch_norm.h), evaluation images are split over the
// processes, and only rank 0 prints and writes files. So N processes take one process's steps.
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint.h"
#include "models/config.h"
#include "models/image_classifier.h"
#include "nn/data/data_loader.h"
#include "nn/data/image_batch.h"
#include "nn/optim/optimizer.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/gradient_reducer.h"

namespace ctxpool::models {

// The three splits an image classifier trains, selects and reports on.
struct ImageData {
  nn::data::ImageSet train, validation, test;
  std::string source;  // where they were read from (printed at start), "" when given in memory
};

// The dataset of the config (data.dataset, data.path), with data.validation_size training images
// held out (the last ones) for validation.
ImageData load_image_data(const DataConfig& data);

struct Accuracy {
  double loss = NAN;  // mean cross-entropy (nats)
  double acc = NAN;   // fraction correct
};

class ImageTrainer {
 public:
  // With resume, continues from the latest checkpoint in config.train.run_dir (if there is one).
  explicit ImageTrainer(const RunConfig& config, bool resume = false,
                        std::shared_ptr<nn::parallel::Communicator> comm = nullptr);
  // The same on given data (tests; datasets that have no loader): images float32 [N, C, H, W].
  ImageTrainer(const RunConfig& config, ImageData data, bool resume = false,
               std::shared_ptr<nn::parallel::Communicator> comm = nullptr);

  // Trains up to train.steps (or train.stop_after more, with a checkpoint); on reaching train.steps
  // also measures the test accuracy (test_result()). Returns the last validation accuracy.
  double fit();
  Accuracy evaluate(const nn::data::ImageSet& split);
  Accuracy evaluate_validation() { return evaluate(data_.validation); }
  Accuracy evaluate_test() { return evaluate(data_.test); }

  double best_val_acc() const { return best_val_; }
  int64_t best_step() const { return best_step_; }
  void load_best();
  const Accuracy& test_result() const { return test_; }

  ImageClassifier& model() { return *model_; }
  const ImageData& data() const { return data_; }
  int64_t step() const { return step_; }
  int64_t batches_per_epoch() const { return loader_->num_batches(); }
  const RunConfig& config() const { return config_; }

 private:
  void setup(bool resume);
  nn::data::ImageSet training_batch(int64_t step, std::vector<std::vector<int64_t>>& order, int64_t& order_epoch) const;
  void save_checkpoint(double last_val_acc);
  void restore(const Checkpoint& ckpt);
  void save_best(double val_acc);
  void finish_with_test();
  bool is_writer() const { return comm_->rank() == 0; }  // rank 0 prints, logs and checkpoints

  RunConfig config_;
  std::shared_ptr<nn::parallel::Communicator> comm_;
  Device device_;
  ImageData data_;
  nn::data::ImageTransform transform_;
  std::unique_ptr<nn::data::DataLoader> loader_;
  std::shared_ptr<ImageClassifier> model_;
  std::unique_ptr<nn::optim::Optimizer> optimizer_;
  std::unique_ptr<nn::parallel::GradientReducer> reducer_;  // averages gradients over comm_
  int64_t step_ = 0;
  double best_val_ = NAN;
  int64_t best_step_ = 0;
  Accuracy test_;
  std::string metrics_path_;
};

}  // namespace ctxpool::models
