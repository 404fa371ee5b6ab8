#include "models/image_trainer.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "models/progress.h"
#include "models/stop_signal.h"
#include "models/train_utils.h"
#include "models/trainer.h"
#include "nn/data/cifar10.h"
#include "nn/data/prefetcher.h"
#include "nn/optim/schedule.h"
#include "nn/parallel/data_parallel.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/sync_batch_norm.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace ctxpool::models {

ImageData load_image_data(const DataConfig& data) {
  CTXPOOL_CHECK(data.dataset == "fashion_mnist" || data.dataset == "cifar10", "data: '", data.dataset,
                "' is not an image dataset (fashion_mnist, cifar10)");
  const std::string dir = resolve_data_path(data.path, data.base_dir);
  auto load = [&](const char* split) {
    return data.dataset == "cifar10" ? nn::data::load_cifar10(dir, split) : nn::data::load_fashion_mnist(dir, split);
  };
  const nn::data::ImageSet train = load("train");
  CTXPOOL_CHECK(data.validation_size < train.size(), "data: validation_size ", data.validation_size,
                " leaves no training images (the training set has ", train.size(), ")");
  const int64_t kept = train.size() - data.validation_size;
  return {nn::data::image_subset(train, 0, kept), nn::data::image_subset(train, kept, data.validation_size),
          load("test"), dir};
}

ImageTrainer::ImageTrainer(const RunConfig& config, bool resume, std::shared_ptr<nn::parallel::Communicator> comm)
    : config_(config), comm_(comm ? std::move(comm) : nn::parallel::single_process()) {
  CTXPOOL_CHECK(config_.model.is_image_model(), "ImageTrainer: model.type \"", config_.model.type, "\" is not an "
                "image classifier (vit, convnet); language models train with Trainer");
  data_ = load_image_data(config_.data);
  config_.data.path = data_.source;  // the directory found: saved with checkpoints, for --resume alone
  setup(resume);
}

ImageTrainer::ImageTrainer(const RunConfig& config, ImageData data, bool resume,
                           std::shared_ptr<nn::parallel::Communicator> comm)
    : config_(config), comm_(comm ? std::move(comm) : nn::parallel::single_process()), data_(std::move(data)) {
  CTXPOOL_CHECK(config_.model.is_image_model(), "ImageTrainer: model.type \"", config_.model.type, "\" is not an "
                "image classifier (vit, convnet); language models train with Trainer");
  setup(resume);
}

void ImageTrainer::setup(bool resume) {
  if (config_.train.threads > 0) set_num_threads(static_cast<int>(config_.train.threads));
  const auto& images = data_.train.images;
  CTXPOOL_CHECK(data_.train.size() > 0 && images.dim() == 4 && images.sizes()[2] == images.sizes()[3],
                "ImageTrainer: need a non-empty training set of square images [N, C, H, H], got ",
                images.defined() ? shape_str(images.sizes()) : "undefined");
  CTXPOOL_CHECK(data_.validation.size() > 0 && data_.test.size() > 0, "ImageTrainer: the validation and test sets "
                "must not be empty (data.validation_size is ", config_.data.validation_size, ")");
  // Sizes "from the data" (0), else checked against it.
  ImageModelConfig& im = config_.model.image;
  // The dataset's class count; for a set that does not know it, one more than the largest label of
  // any split (not of the training split alone: a class missing there is still a class).
  const int64_t known = data_.train.num_classes;
  int64_t classes = known;
  const std::pair<const char*, const nn::data::ImageSet*> splits[] = {
      {"training", &data_.train}, {"validation", &data_.validation}, {"test", &data_.test}};
  for (const auto& [name, split] : splits) {
    const int64_t* l = split->labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < split->size(); ++i) {
      CTXPOOL_CHECK(l[i] >= 0 && (known == 0 || l[i] < known), "ImageTrainer: label ", l[i], " of ", name,
                    " image ", i, " is not a class (expected ",
                    known == 0 ? std::string("a non-negative index") : "0.." + std::to_string(known - 1), ")");
      classes = std::max(classes, l[i] + 1);
    }
  }
  const std::pair<int64_t*, int64_t> sizes[] = {
      {&im.in_channels, images.sizes()[1]}, {&im.image_size, images.sizes()[2]}, {&im.num_classes, classes}};
  const char* names[] = {"in_channels", "image_size", "num_classes"};
  for (int i = 0; i < 3; ++i) {
    if (*sizes[i].first == 0) *sizes[i].first = sizes[i].second;
    CTXPOOL_CHECK(i == 2 ? *sizes[i].first >= sizes[i].second : *sizes[i].first == sizes[i].second, "config: "
                  "'model.image.", names[i], "' is ", *sizes[i].first, " but the data has ", sizes[i].second);
  }

  std::unique_ptr<Checkpoint> ckpt;
  if (resume && has_checkpoint(config_.train.run_dir)) {
    ckpt = std::make_unique<Checkpoint>(load_checkpoint(config_.train.run_dir));
    CTXPOOL_CHECK(ckpt->sidecar.contains("config"), "resume: the checkpoint in '", config_.train.run_dir,
                  "' has no config");
    check_resume_config(RunConfig::from_json(ckpt->sidecar["config"]), config_, config_.train.run_dir);
  }

  transform_ = {};
  if (config_.data.normalize) nn::data::channel_stats(data_.train.images, transform_.mean, transform_.std);
  for (float& s : transform_.std) s = std::max(s, 1e-6f);  // a constant channel: centred, not divided by 0
  transform_.crop_padding = config_.data.crop_padding;
  transform_.horizontal_flip = config_.data.horizontal_flip;
  loader_ = std::make_unique<nn::data::DataLoader>(data_.train.size(), config_.train.batch_size, true,
                                                   config_.train.seed ^ 0x5851F42D4C957F2Dull, true);
  CTXPOOL_CHECK(loader_->num_batches() > 0, "ImageTrainer: train.batch_size ", config_.train.batch_size,
                " exceeds the ", data_.train.size(), " training images");

  device_ = training_device(config_.train);
  check_distributed_config(config_, *comm_, device_);
  manual_seed(config_.train.seed);  // model initialisation (on the CPU, so every device starts alike) and dropout
  model_ = make_image_classifier(config_.model);
  model_->to(device_);
  if (comm_->size() > 1) nn::parallel::convert_sync_batch_norm(*model_, comm_);  // the whole batch's statistics
  optimizer_ = make_optimizer(config_.optim, *model_);
  reducer_ = std::make_unique<nn::parallel::GradientReducer>(model_->parameters(), comm_);

  metrics_path_ = config_.train.run_dir + "/metrics.jsonl";
  if (is_writer()) {
    prepare_run_dir(config_.train, resume);  // with resume and no checkpoint yet: a fresh start there
    const nlohmann::json info = {{"parameters", model_->num_parameters()},
                                 {"flops_per_image", model_->flops_per_image()},
                                 {"model", config_.to_json()["model"]}};
    write_file_atomic(config_.train.run_dir + "/model.json", info.dump(2) + "\n");
  }
  if (ckpt) {
    try {
      restore(*ckpt);
    } catch (const nlohmann::json::exception& e) {
      detail::fail("resume: the checkpoint in '", config_.train.run_dir, "' has a malformed sidecar: ", e.what());
    }
  } else if (is_writer()) {
    write_file_atomic(metrics_path_, "");
  }
  // One model on every process, from one checkpoint in one run directory that all of them see;
  // rank 0's weights and statistics everywhere, and no process starts before rank 0 has prepared it.
  check_same_start(*comm_, step_, config_.train.run_dir);
  nn::parallel::broadcast_parameters(model_->parameters(), *comm_);
  std::vector<Tensor> statistics;
  for (const auto& [name, b] : model_->named_buffers())
    if (b.dtype() == kFloat32 || b.dtype() == kFloat64) statistics.push_back(b);
  nn::parallel::broadcast_parameters(statistics, *comm_);
  comm_->barrier();
}

void ImageTrainer::restore(const Checkpoint& ckpt) {
  const auto& side = ckpt.sidecar;
  model_->load_state_dict(ckpt.model);
  optimizer_->load_state_tensors(ckpt.optimizer);
  optimizer_->set_step_count(side.at("optimizer").at("step_count").get<int64_t>());
  const auto& rng = side.at("rng").at("default");
  default_generator().set_state(rng.at("seed"), rng.at("offset"));
  step_ = ckpt.step;
  if (is_writer()) truncate_metrics(metrics_path_, step_);  // later lines will be redone
  const std::string best_path = config_.train.run_dir + "/best.json";
  if (config_.train.keep_best && file_exists(best_path)) {
    const auto best = nlohmann::json::parse(read_file(best_path), nullptr, false);
    CTXPOOL_CHECK(!best.is_discarded() && best.contains("step") && best.contains("val_acc"), "resume: '", best_path,
                  "' is malformed");
    if (best.at("step").get<int64_t>() <= step_) {
      best_step_ = best.at("step").get<int64_t>();
      best_val_ = best.at("val_acc").get<double>();
    }
  }
}

void ImageTrainer::save_checkpoint(double last_val_acc) {
  check_finite_parameters(model_->parameters(), step_, config_.train.run_dir);
  Checkpoint ckpt;
  ckpt.step = step_;
  ckpt.model = model_->state_dict();
  ckpt.optimizer = optimizer_->state_tensors();
  ckpt.sidecar = {
      {"config", config_.to_json()},
      {"normalization", {{"mean", transform_.mean}, {"std", transform_.std}}},  // for inference elsewhere
      {"optimizer", {{"type", config_.optim.type}, {"step_count", optimizer_->step_count()}}},
      {"rng", {{"default", generator_json(default_generator())}}},
      {"metrics", {{"val_acc", std::isnan(last_val_acc) ? nlohmann::json() : nlohmann::json(last_val_acc)}}},
  };
  models::save_checkpoint(config_.train.run_dir, ckpt, static_cast<int>(config_.train.keep_checkpoints));
}

void ImageTrainer::save_best(double val_acc) {
  nn::save_safetensors(config_.train.run_dir + "/best.safetensors", model_->state_dict());
  const nlohmann::json record = {{"step", step_}, {"val_acc", val_acc}};
  write_file_atomic(config_.train.run_dir + "/best.json", record.dump() + "\n");
  best_val_ = val_acc;
  best_step_ = step_;
}

void ImageTrainer::load_best() {
  CTXPOOL_CHECK(best_step_ > 0, "trainer: no best weights in '", config_.train.run_dir,
                "' (train.keep_best is off, or no evaluation has run yet)");
  model_->load_state_dict(nn::load_safetensors(config_.train.run_dir + "/best.safetensors"));
}

Accuracy ImageTrainer::evaluate(const nn::data::ImageSet& split) {
  autograd::NoGradGuard no_grad;
  const profile::Pause not_profiled;  // the profile is of training steps
  CTXPOOL_CHECK(split.size() > 0, "evaluate: the split has no images");
  const bool was_training = model_->is_training();
  model_->eval();
  double loss = 0, correct = 0;
  // With several processes, each takes every size-th batch of images, and the sums are added up.
  const int64_t batch = config_.train.eval_batch_size;
  for (int64_t first = comm_->rank() * batch; first < split.size(); first += batch * comm_->size()) {
    std::vector<int64_t> idx(std::min(batch, split.size() - first));
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = first + static_cast<int64_t>(i);
    const auto b = nn::data::make_image_batch(split, idx, transform_, false, 0, 0);
    const Tensor logits = model_->forward(b.images.to(device_));
    const Tensor labels = b.labels.to(device_);
    loss += ops::cross_entropy(logits, labels, -100, ops::Reduction::Sum).to(kFloat64).item();
    correct += ops::sum(ops::eq(ops::argmax(logits, 1), labels).to(kInt64)).item();
  }
  if (comm_->size() > 1) {
    const Tensor sums = from_vector(std::vector<double>{loss, correct}, {2}, kFloat64);
    comm_->all_reduce_sum(sums);
    loss = sums.to_vector<double>()[0];
    correct = sums.to_vector<double>()[1];
  }
  model_->train(was_training);
  return {loss / static_cast<double>(split.size()), correct / static_cast<double>(split.size())};
}

// Batch `step mod B` of epoch `step / B`, or this process's rows of it. `order` caches the current
// epoch's batches (the prefetch thread is the only caller while training runs).
nn::data::ImageSet ImageTrainer::training_batch(int64_t step, std::vector<std::vector<int64_t>>& order,
                                                int64_t& order_epoch) const {
  const int64_t per_epoch = loader_->num_batches(), epoch = step / per_epoch;
  if (epoch != order_epoch) order = loader_->epoch(epoch), order_epoch = epoch;
  const std::vector<int64_t>& batch = order[step % per_epoch];
  const int64_t per_process = static_cast<int64_t>(batch.size()) / comm_->size(), first = comm_->rank() * per_process;
  const std::vector<int64_t> mine(batch.begin() + first, batch.begin() + first + per_process);
  return nn::data::make_image_batch(data_.train, mine, transform_, true, config_.train.seed,
                                    static_cast<uint64_t>(step), first);
}

void ImageTrainer::finish_with_test() {
  const bool best = config_.train.keep_best && best_step_ > 0;
  comm_->barrier();  // rank 0 has written the best weights
  if (best) load_best();
  test_ = evaluate_test();  // (a collective: every process evaluates its share)
  if (!is_writer()) return;
  const int64_t from = best ? best_step_ : step_;
  append_metrics(metrics_path_, {{"step", step_}, {"test_loss", test_.loss}, {"test_acc", test_.acc},
                                 {"test_weights_step", from}});
  std::printf("test: accuracy %.4f, loss %.4f (%zu images, the weights of step %lld%s)\n", test_.acc, test_.loss,
              static_cast<size_t>(data_.test.size()), static_cast<long long>(from),
              best ? ", best validation accuracy" : "");
  std::fflush(stdout);
}

double ImageTrainer::fit() {
  const TrainConfig& t = config_.train;
  const nn::optim::WarmupCosine schedule{config_.optim.lr, config_.schedule.warmup_steps, t.steps,
                                         config_.schedule.min_lr_ratio};
  const int64_t first_step = step_, end = t.stop_after > 0 ? std::min(t.steps, step_ + t.stop_after) : t.steps;
  const std::vector<Tensor> params = model_->parameters();
  const int64_t per_epoch = loader_->num_batches();
  double last_val = NAN, interval_ms = 0, interval_loss = 0;
  BestValidation seen_best{true};  // among this fit()'s evaluations (keep_best tracks it across resumes)
  int64_t interval_n = 0;
  const bool writer = is_writer();
  if (writer)
    std::printf("model: %s, %lld parameters, %.2f MFLOPs per image (forward); data%s%s%s: %lld train / %lld "
                "validation / %lld test images, %lld batches of %lld per epoch; %d thread%s; device %s%s\n",
                model_->type_name().c_str(), static_cast<long long>(model_->num_parameters()),
                model_->flops_per_image() / 1e6, data_.source.empty() ? "" : " '", data_.source.c_str(),
                data_.source.empty() ? "" : "'", static_cast<long long>(data_.train.size()),
                static_cast<long long>(data_.validation.size()), static_cast<long long>(data_.test.size()),
                static_cast<long long>(per_epoch), static_cast<long long>(t.batch_size), get_num_threads(),
                get_num_threads() == 1 ? "" : "s", t.device.c_str(),
                comm_->size() > 1 ? ("; data-parallel over " + comm_->describe()).c_str() : "");
  std::vector<std::vector<int64_t>> order;
  int64_t order_epoch = -1;
  nn::data::Prefetcher<nn::data::ImageSet> batches(
      [&](int64_t s) { return training_batch(s, order, order_epoch); }, step_);
  ProgressBar bar(t.steps, step_, writer);
  StopSignalGuard signals;  // Ctrl-C / SIGTERM: finish the step, checkpoint, stop
  bool stop = false;        // agreed by every process, so that all stop after the same step
  const auto start = std::chrono::steady_clock::now();
  profile::StepProfile step_profile;
  model_->train();
  while (step_ < end && !stop) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = schedule(step_);
    optimizer_->set_lr(lr);
    const nn::data::ImageSet batch = batches.next();
    const Tensor logits = model_->forward(batch.images.to(device_));
    const Tensor loss = ops::cross_entropy(logits, batch.labels.to(device_));
    const Tensor aux = model_->auxiliary_loss();
    optimizer_->zero_grad();
    (aux.defined() ? ops::add(loss, aux) : loss).backward();
    reducer_->finish();  // the gradients averaged over the processes (their exchange began during backward)
    const double norm = config_.optim.grad_clip > 0 ? nn::optim::clip_grad_norm(params, config_.optim.grad_clip)
                                                    : nn::optim::grad_norm(params);
    const StepAgreement agreed = agree_on_step(*comm_, loss.item(), stop_requested());  // the whole batch's loss
    const double train_loss = agreed.loss;
    stop = agreed.stop;
    const bool finite = std::isfinite(train_loss) && std::isfinite(norm);
    if (!finite && !t.skip_nonfinite) fail_nonfinite(step_ + 1, train_loss, norm, config_.train.run_dir);
    if (finite) optimizer_->step();
    ++step_;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    step_profile.after_step(ms);  // CTXPOOL_PROFILE=1
    if (!finite && writer) std::printf("\nstep %lld: non-finite loss or gradient norm, step skipped\n", static_cast<long long>(step_));
    nlohmann::json record = {{"step", step_}, {"epoch", static_cast<double>(step_) / static_cast<double>(per_epoch)},
                             {"train_loss", train_loss}, {"lr", lr}, {"grad_norm", norm}, {"ms_per_step", ms},
                             {"images_per_s", static_cast<double>(t.batch_size) / (ms / 1000.0)}};
    if (aux.defined()) record["aux_loss"] = aux.item();
    interval_ms += ms;
    interval_loss += train_loss;
    ++interval_n;
    char status[96];
    std::snprintf(status, sizeof status, "loss %.4f  lr %.2e", train_loss, lr);
    bar.update(step_, status);
    if (writer && (step_ % t.log_interval == 0 || step_ == end)) {
      bar.finish();
      for (const auto& [key, value] : model_->diagnostics()) record[key] = value;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %6lld/%lld (epoch %.2f) | loss %.4f | lr %.3e | grad %.3f | %7.1f ms/step | %6.0f img/s | %s\n",
                  static_cast<long long>(step_), static_cast<long long>(t.steps),
                  static_cast<double>(step_) / static_cast<double>(per_epoch), interval_loss / interval_n, lr, norm,
                  interval_ms / interval_n, static_cast<double>(t.batch_size) / (interval_ms / interval_n / 1000.0),
                  elapsed_and_eta(elapsed, step_ - first_step, t.steps - step_).c_str());
      std::fflush(stdout);
      interval_ms = interval_loss = 0;
      interval_n = 0;
    }
    if ((t.eval_interval > 0 && step_ % t.eval_interval == 0) || step_ == t.steps) {
      bar.finish();
      const Accuracy val = evaluate_validation();
      last_val = val.acc;
      seen_best.offer(val.acc, step_);
      record["val_loss"] = val.loss;
      record["val_acc"] = val.acc;
      if (t.keep_best && !(val.acc <= best_val_)) {  // also when best_val_ is NaN
        if (writer) save_best(val.acc);
        best_val_ = val.acc;
        best_step_ = step_;
      }
      if (writer)
        std::printf("step %6lld | val_acc %.4f | val_loss %.4f | %.0f s\n", static_cast<long long>(step_), val.acc,
                  val.loss, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::fflush(stdout);
    }
    if (!finite) record["skipped"] = true;
    if (writer) append_metrics(metrics_path_, record);
    if (comm_->size() == 1) stop = stop || stop_requested();  // (a signal during the evaluation)
    const bool periodic = (t.checkpoint_interval > 0 && step_ % t.checkpoint_interval == 0) || step_ == end;
    if (writer && (periodic || stop)) save_checkpoint(last_val);
    if (stop) {
      bar.finish();
      if (writer) report_stopped(step_, t.steps, t.run_dir);
      break;
    }
  }
  bar.finish();
  if (writer) step_profile.report(std::cerr);
  if (step_ == t.steps && step_ > first_step) finish_with_test();
  if (writer && step_ > first_step && !stop) {
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
    if (t.keep_best && best_step_ > 0) seen_best = BestValidation{true, best_val_, best_step_};  // across resumes
    char test[64] = "";
    if (!std::isnan(test_.acc)) std::snprintf(test, sizeof test, " | test acc %.4f", test_.acc);
    report_done(first_step, step_, t.steps, minutes, "val acc", last_val, seen_best, test, t.run_dir);
  }
  return last_val;
}

}  // namespace ctxpool::models
