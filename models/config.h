// Run configuration, read from JSON. Every section is checked strictly: an unknown key or a value
// of the wrong type is an error that names the key ("config: 'optim.lr' must be a number").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ctxpool::models {

// Adaptive context pooling in the LM (../shared/PAPER.md; docs/contextpool.md).
struct ContextPoolConfig {
  bool enabled = false;
  int64_t window = 16;                   // K
  std::string mode = "full";             // "full", "weights_only", "uniform"
  bool residual = false;                 // out = x + pooled instead of pooled
  std::string placement = "attn_input";  // "attn_input" (attention reads pool(ln1(x))) or "between" blocks
  std::string pooled = "kv";             // attn_input: "kv" (keys and values pooled) or "qkv"
  double s_min = 0.5;
  double s_max = 0.0;                    // 0: max(window / 2, s_min)
  double s_fixed = 0.0;                  // 0: (s_min + s_max) / 2 (the support when it is not learned)
  int64_t hidden = 0;                    // predictor width; 0: max(1, d_model / 4)
  int64_t kernel_size = 3;               // of the predictor's convolutions
  double lambda = 0.0;                   // support regulariser lambda * mean(s) per layer (mode full only)
};

// Adaptive attention span (Sukhbaatar et al. 2019), for attention = "adaptive_span".
struct AdaptiveSpanConfig {
  int64_t max_span = 0;  // S; 0: the context length
  double ramp = 32.0;    // R
  double init = 0.0;     // z at initialisation
  double lambda = 2e-6;  // penalty lambda * S * mean(z) per layer
};

// Image classifiers (model.type "vit" or "convnet"); sizes left at 0 are taken from the dataset.
struct ImageModelConfig {
  int64_t in_channels = 0;
  int64_t image_size = 0;                 // square images of image_size x image_size
  int64_t num_classes = 0;
  int64_t patch_size = 4;                 // vit: the patch embedding's kernel and stride
  std::string pooling = "cls";            // vit: "cls" (a class token) or "mean" (over patch tokens)
  std::vector<int64_t> channels = {32, 64, 128};  // convnet: the width of each stage
  int64_t convs_per_stage = 2;            // convnet: 3x3 conv + BN + ReLU layers per stage
  std::string downsample = "max_pool";    // convnet, between stages: "max_pool" or "context_pool" (stride 2)
};

struct ModelConfig {
  std::string type = "transformer_lm";  // "transformer_lm", "vit" or "convnet"
  int64_t vocab_size = 0;  // 0: taken from the corpus
  int64_t n_layers = 4;
  int64_t d_model = 128;
  int64_t n_heads = 4;
  int64_t d_mlp = 512;
  int64_t context = 128;
  double dropout = 0.0;
  double init_std = 0.02;
  std::string gelu = "none";  // "none" (exact) or "tanh"
  std::string dtype = "float32";   // the weights' and activations' dtype: "float32" or "float64"
  std::string attention = "full";  // "full", "local" (sliding window) or "adaptive_span"
  int64_t local_window = 32;       // attention = "local": keys i - W < j <= i
  AdaptiveSpanConfig adaptive_span;
  ContextPoolConfig context_pool;  // vit: ContextPool2d on the patch grid; convnet: its downsampling
  ImageModelConfig image;          // vit and convnet only

  bool is_image_model() const { return type == "vit" || type == "convnet"; }
  // Every value in range and every name known; an error names the key ("config: 'model.attention'
  // must be one of ..."). RunConfig::from_json and the TransformerLM constructor call it.
  void validate() const;

 private:
  void validate_image() const;
};

struct DataConfig {
  std::string dataset = "text";  // "text" (a byte corpus), "fashion_mnist" or "cifar10"
  // The corpus file, or the image dataset's directory (default data/fashion-mnist, data/cifar10-jpeg).
  std::string path = "../shared/data/tinyshakespeare.txt";
  double train_fraction = 0.9;       // text
  double validation_fraction = 0.1;  // text
  // Images: the last validation_size training images are held out for validation (model selection;
  // a sample of every class: Fashion-MNIST's files are in random order, and the CIFAR-10 reader
  // shuffles its class-by-class listing);
  // the test set is the dataset's own. Augmentation of training batches; per-channel normalisation
  // with the training images' statistics.
  int64_t validation_size = 5000;
  int64_t crop_padding = 0;      // > 0: random crops of the image zero-padded by this many pixels
  bool horizontal_flip = false;
  bool normalize = true;
  // The directory of the config file this came from (RunConfig::from_file; not saved): a relative
  // `path` is looked up there when the working directory does not have it.
  std::string base_dir;

  bool is_images() const { return dataset != "text"; }
};

struct OptimConfig {
  std::string type = "adamw";  // "adamw" or "sgd"
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double momentum = 0.9;       // sgd
  double weight_decay = 0.1;
  bool decay_matrices_only = true;  // no weight decay on biases, norms (any parameter with dim < 2)
  double grad_clip = 1.0;           // 0: off
};

struct ScheduleConfig {
  int64_t warmup_steps = 20;
  double min_lr_ratio = 0.1;
};

struct TrainConfig {
  int64_t steps = 1500;
  int64_t batch_size = 32;
  int64_t eval_interval = 250;      // 0: only at the end
  int64_t eval_batch_size = 32;
  int64_t max_eval_windows = 0;     // 0: the whole validation split
  int64_t log_interval = 50;
  int64_t checkpoint_interval = 500;  // 0: only at the end
  int64_t keep_checkpoints = 2;     // how many of the newest checkpoints stay in run_dir (at least 1)
  int64_t stop_after = 0;           // > 0: stop (with a checkpoint) after this many steps, as if interrupted
  bool overwrite = false;           // a new run may replace the run already in run_dir
  bool skip_nonfinite = false;      // a NaN/inf loss or gradient norm: skip that step (else stop with an error)
  bool keep_best = false;           // keep the weights with the best validation bpc or accuracy (best.safetensors + best.json)
  uint64_t seed = 1337;
  int64_t threads = 0;              // 0: CTXPOOL_NUM_THREADS or all cores
  std::string device = "cpu";       // "cpu", "cuda" or "cuda:N": where the model trains
  bool allow_tf32 = false;          // TF32 tensor cores for float32 CUDA matmuls and convolutions (no effect on
                                    // the CPU, so a TF32 run can resume there)
  std::string run_dir = "runs/default";
};

struct RunConfig {
  ModelConfig model;
  DataConfig data;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;

  static RunConfig from_json(const nlohmann::json& j);
  static RunConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
  // Every optimizer, schedule and training value in range (from_json calls it).
  void validate_hyperparameters() const;
};

}  // namespace ctxpool::models
