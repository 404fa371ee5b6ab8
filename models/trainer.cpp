#include "models/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "models/progress.h"
#include "models/stop_signal.h"
#include "models/train_utils.h"
#include "nn/optim/schedule.h"
#include "nn/parallel/data_parallel.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/serialize.h"
#include "ops/ops.h"

namespace ctxpool::models {

using nn::data::Split;

std::string resolve_data_path(const std::string& path, const std::string& base_dir) {
  // Absolute, so that the path saved with checkpoints still works from another working directory.
  const auto found = [](const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); };
  if (file_exists(path) || std::filesystem::path(path).is_absolute()) return found(path);
  std::string tried = "'" + path + "'";
  if (!base_dir.empty()) {
    const std::string beside_config = (std::filesystem::path(base_dir) / path).lexically_normal().string();
    if (file_exists(beside_config)) return found(beside_config);
    tried += ", '" + beside_config + "' (beside the config)";
  }
  std::string prefix;
  for (int up = 1; up <= 3; ++up) {
    prefix += "../";
    if (file_exists(prefix + path)) return found(prefix + path);
    tried += ", '" + prefix + path + "'";
  }
  detail::fail("data: corpus not found (tried ", tried, ")");
}

Trainer::Trainer(const RunConfig& config, bool resume, std::shared_ptr<nn::parallel::Communicator> comm)
    : config_(config), comm_(comm ? std::move(comm) : nn::parallel::single_process()) {
  CTXPOOL_CHECK(!config_.model.is_image_model(), "Trainer: model.type \"", config_.model.type, "\" is an image "
                "classifier; train it with ImageTrainer (models/image_trainer.h)");
  if (config_.train.threads > 0) set_num_threads(static_cast<int>(config_.train.threads));
  std::unique_ptr<Checkpoint> ckpt;
  if (resume && has_checkpoint(config_.train.run_dir)) {
    ckpt = std::make_unique<Checkpoint>(load_checkpoint(config_.train.run_dir));
    CTXPOOL_CHECK(ckpt->sidecar.contains("config"), "resume: the checkpoint in '", config_.train.run_dir,
                  "' has no config");
    check_resume_config(RunConfig::from_json(ckpt->sidecar["config"]), config_, config_.train.run_dir);
  }

  nn::data::CorpusOptions copts;
  copts.train_fraction = config_.data.train_fraction;
  copts.validation_fraction = config_.data.validation_fraction;
  // The path found is the one saved with checkpoints, so --resume without the config finds it too.
  config_.data.path = resolve_data_path(config_.data.path, config_.data.base_dir);
  corpus_ = nn::data::TextCorpus::load(config_.data.path, copts);
  // Evaluation must be possible before an hour of training is spent.
  CTXPOOL_CHECK(corpus_.num_windows(Split::Validation, config_.model.context) > 0, "data: the validation split of '",
                corpus_.path(), "' has ", corpus_.size(Split::Validation), " bytes, fewer than context + 1 = ",
                config_.model.context + 1, " (raise data.validation_fraction or lower model.context)");
  CTXPOOL_CHECK(corpus_.size(Split::Test) == 0 || corpus_.num_windows(Split::Test, config_.model.context) > 0,
                "data: the test split of '", corpus_.path(), "' has ", corpus_.size(Split::Test),
                " bytes, fewer than context + 1 = ", config_.model.context + 1);
  if (config_.model.vocab_size == 0) config_.model.vocab_size = corpus_.vocab_size();
  CTXPOOL_CHECK(config_.model.vocab_size == corpus_.vocab_size(), "config: model.vocab_size is ",
                config_.model.vocab_size, " but the corpus has ", corpus_.vocab_size(), " distinct bytes");

  device_ = training_device(config_.train);
  check_distributed_config(config_, *comm_, device_);
  manual_seed(config_.train.seed);  // model initialisation (on the CPU, so every device starts alike) and dropout
  model_ = std::make_shared<TransformerLM>(config_.model);  // in model.dtype
  model_->to(device_);
  optimizer_ = make_optimizer(config_.optim, *model_);
  reducer_ = std::make_unique<nn::parallel::GradientReducer>(model_->parameters(), comm_);
  data_gen_.set_state(config_.train.seed ^ 0xD1B54A32D192ED03ull, 0);

  metrics_path_ = config_.train.run_dir + "/metrics.jsonl";
  if (is_writer()) {
    prepare_run_dir(config_.train, resume);  // with resume and no checkpoint yet: a fresh start there
    // The model's size and cost, for tables that compare runs (the experiment runner reads it).
    const nlohmann::json info = {{"parameters", model_->num_parameters()},
                                 {"flops_per_token", model_->flops_per_token()},
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
  // Every process must have resumed from the same checkpoint: they read it from the run directory, which
  // is therefore one directory that all of them see (on several machines: a shared file system).
  check_same_start(*comm_, step_, config_.train.run_dir);
  // One model: rank 0's weights everywhere (equal already, from one seed or one checkpoint; this makes
  // it certain), and no process starts before rank 0 has prepared the run directory.
  nn::parallel::broadcast_parameters(model_->parameters(), *comm_);
  comm_->barrier();
}

void Trainer::restore(const Checkpoint& ckpt) {
  const auto& side = ckpt.sidecar;
  std::vector<uint8_t> vocab = side.at("vocab").get<std::vector<uint8_t>>();
  CTXPOOL_CHECK(vocab == corpus_.vocab(), "resume: the corpus vocabulary differs from the checkpoint's");
  model_->load_state_dict(ckpt.model);
  optimizer_->load_state_tensors(ckpt.optimizer);
  optimizer_->set_step_count(side.at("optimizer").at("step_count").get<int64_t>());
  const auto& rng = side.at("rng");
  default_generator().set_state(rng.at("default").at("seed"), rng.at("default").at("offset"));
  data_gen_.set_state(rng.at("data").at("seed"), rng.at("data").at("offset"));
  step_ = ckpt.step;
  if (is_writer()) truncate_metrics(metrics_path_, step_);  // later lines (by the run that stopped) will be redone
  // The best evaluation so far, unless it came after the checkpoint (the run will redo those steps).
  const std::string best_path = config_.train.run_dir + "/best.json";
  if (config_.train.keep_best && file_exists(best_path)) {
    const auto best = nlohmann::json::parse(read_file(best_path), nullptr, false);
    CTXPOOL_CHECK(!best.is_discarded() && best.contains("step") && best.contains("val_bpc"), "resume: '", best_path,
                  "' is malformed");
    if (best.at("step").get<int64_t>() <= step_) {
      best_step_ = best.at("step").get<int64_t>();
      best_val_ = best.at("val_bpc").get<double>();
    }
  }
}

void Trainer::save_checkpoint(double last_val_bpc) {
  check_finite_parameters(model_->parameters(), step_, config_.train.run_dir);
  Checkpoint ckpt;
  ckpt.step = step_;
  ckpt.model = model_->state_dict();
  ckpt.optimizer = optimizer_->state_tensors();
  ckpt.sidecar = {
      {"config", config_.to_json()},
      {"vocab", corpus_.vocab()},
      {"optimizer", {{"type", config_.optim.type}, {"step_count", optimizer_->step_count()}}},
      {"rng", {{"default", generator_json(default_generator())}, {"data", generator_json(data_gen_)}}},
      {"metrics", {{"val_bpc", std::isnan(last_val_bpc) ? nlohmann::json() : nlohmann::json(last_val_bpc)},
                   {"train_loss", history_.empty() ? nlohmann::json() : nlohmann::json(history_.back().train_loss)}}},
  };
  models::save_checkpoint(config_.train.run_dir, ckpt, static_cast<int>(config_.train.keep_checkpoints));
}

// The weights first, then best.json naming their step: a crash in between leaves the old record,
// which the resumed run (recomputing the same steps) replaces.
void Trainer::save_best(double val_bpc) {
  nn::save_safetensors(config_.train.run_dir + "/best.safetensors", model_->state_dict());
  const nlohmann::json record = {{"step", step_}, {"val_bpc", val_bpc}};
  write_file_atomic(config_.train.run_dir + "/best.json", record.dump() + "\n");
  best_val_ = val_bpc;
  best_step_ = step_;
}

void Trainer::load_best() {
  CTXPOOL_CHECK(best_step_ > 0, "trainer: no best weights in '", config_.train.run_dir,
                "' (train.keep_best is off, or no evaluation has run yet)");
  model_->load_state_dict(nn::load_safetensors(config_.train.run_dir + "/best.safetensors"));
}

void Trainer::write_metrics(const StepRecord& r) {
  nlohmann::json j = {{"step", r.step}, {"train_loss", r.train_loss}, {"lr", r.lr}, {"grad_norm", r.grad_norm},
                      {"ms_per_step", r.ms}, {"tokens_per_s", r.tokens_per_s}};
  if (!std::isnan(r.val_bpc)) j["val_bpc"] = r.val_bpc;
  if (!std::isnan(r.aux_loss)) j["aux_loss"] = r.aux_loss;
  for (const auto& [key, value] : r.diagnostics) j[key] = value;
  append_metrics(metrics_path_, j);
}

double Trainer::evaluate(Split split) { return evaluate(split, config_.train.max_eval_windows); }

double Trainer::evaluate(Split split, int64_t max_windows) {
  NoGradGuard no_grad;
  const profile::Pause not_profiled;  // the profile is of training steps
  const int64_t context = config_.model.context;
  int64_t windows = corpus_.num_windows(split, context);
  if (max_windows > 0) windows = std::min(windows, max_windows);
  CTXPOOL_CHECK(windows > 0, "evaluate: the split has fewer than context + 1 = ", context + 1, " tokens");
  model_->eval();
  double total = 0;
  // With several processes, each takes every size-th batch of windows, and the sums are added up.
  const int64_t eval_batch = config_.train.eval_batch_size;
  for (int64_t first = comm_->rank() * eval_batch; first < windows; first += eval_batch * comm_->size()) {
    const int64_t count = std::min(config_.train.eval_batch_size, windows - first);
    auto [x, y] = corpus_.windows(split, context, first, count);
    const Tensor logits = model_->forward(x.to(device_));
    total += ops::cross_entropy(logits.reshape({-1, config_.model.vocab_size}), y.to(device_).reshape({-1}), -100,
                                ops::Reduction::Sum).item();
  }
  if (comm_->size() > 1) {
    const Tensor sum = scalar_tensor(total, kFloat64).reshape({1});
    comm_->all_reduce_sum(sum);
    total = sum.item();
  }
  model_->train();
  return total / static_cast<double>(windows * context) / std::log(2.0);
}

double Trainer::fit() {
  const TrainConfig& t = config_.train;
  const nn::optim::WarmupCosine schedule{config_.optim.lr, config_.schedule.warmup_steps, t.steps,
                                         config_.schedule.min_lr_ratio};
  const int64_t end = t.stop_after > 0 ? std::min(t.steps, step_ + t.stop_after) : t.steps;
  const std::vector<Tensor> params = model_->parameters();
  const int64_t tokens = t.batch_size * config_.model.context;
  double last_val = NAN, interval_ms = 0, interval_loss = 0;
  BestValidation seen_best{false};  // among this fit()'s evaluations (keep_best tracks it across resumes)
  int64_t interval_n = 0;
  const bool writer = is_writer();
  if (writer)
    std::printf("model: %lld parameters, %.3f MFLOPs per token (forward); corpus '%s': %lld train / %lld validation "
                "bytes, vocabulary %lld; %d thread%s; device %s%s\n",
                static_cast<long long>(model_->num_parameters()), model_->flops_per_token() / 1e6,
                corpus_.path().c_str(), static_cast<long long>(corpus_.size(Split::Train)),
                static_cast<long long>(corpus_.size(Split::Validation)), static_cast<long long>(corpus_.vocab_size()),
                get_num_threads(), get_num_threads() == 1 ? "" : "s", config_.train.device.c_str(),
                comm_->size() > 1 ? ("; data-parallel over " + comm_->describe()).c_str() : "");
  ProgressBar bar(t.steps, step_, writer);
  const int64_t first_step = step_;
  const auto started = std::chrono::steady_clock::now();
  StopSignalGuard signals;  // Ctrl-C / SIGTERM: finish the step, checkpoint, stop
  bool stop = false;        // agreed by every process, so that all stop after the same step
  profile::StepProfile step_profile;
  model_->train();
  while (step_ < end && !stop) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = schedule(step_);
    optimizer_->set_lr(lr);
    // The global batch, the same on every process; each trains on its rows of it.
    auto [x, y] = corpus_.random_batch(Split::Train, t.batch_size, config_.model.context, data_gen_);
    if (comm_->size() > 1) {
      x = nn::parallel::shard_rows(x, *comm_);
      y = nn::parallel::shard_rows(y, *comm_);
    }
    const Tensor logits = model_->forward(x.to(device_));
    const Tensor loss = ops::cross_entropy(logits.reshape({-1, config_.model.vocab_size}), y.to(device_).reshape({-1}));
    const Tensor aux = model_->auxiliary_loss();  // regularisers; logged apart from the cross-entropy
    optimizer_->zero_grad();
    (aux.defined() ? ops::add(loss, aux) : loss).backward();
    reducer_->finish();  // the gradients averaged over the processes (their exchange began during backward)
    const double norm = config_.optim.grad_clip > 0 ? nn::optim::clip_grad_norm(params, config_.optim.grad_clip)
                                                    : nn::optim::grad_norm(params);
    double train_loss = loss.item();
    stop = stop_requested();
    const StepAgreement agreed = agree_on_step(*comm_, train_loss, stop);  // the whole batch's loss; any stop
    train_loss = agreed.loss;
    stop = agreed.stop;
    const bool finite = std::isfinite(train_loss) && std::isfinite(norm);
    if (!finite && !t.skip_nonfinite) fail_nonfinite(step_ + 1, train_loss, norm, config_.train.run_dir);
    if (finite) {
      optimizer_->step();
      model_->after_optimizer_step();
    }
    ++step_;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    step_profile.after_step(ms);  // CTXPOOL_PROFILE=1

    StepRecord r{step_, train_loss, lr, norm, ms, tokens / (ms / 1000.0), NAN, aux.defined() ? aux.item() : NAN, {}};
    if (!finite && writer)
      std::printf("\nstep %lld: non-finite loss or gradient norm, step skipped\n", static_cast<long long>(step_));
    interval_ms += ms;
    interval_loss += r.train_loss;
    ++interval_n;
    char status[96];
    std::snprintf(status, sizeof status, "loss %.4f  lr %.2e", r.train_loss, lr);
    bar.update(step_, status);
    if (writer && (step_ % t.log_interval == 0 || step_ == end)) {
      bar.finish();
      r.diagnostics = model_->diagnostics();
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::printf("step %6lld/%lld | loss %.4f (%.3f bpc) | lr %.3e | grad %.3f | %7.1f ms/step | %8.0f tok/s | %s\n",
                  static_cast<long long>(step_), static_cast<long long>(t.steps), interval_loss / interval_n,
                  interval_loss / interval_n / std::log(2.0), lr, norm,
                  interval_ms / interval_n, tokens / (interval_ms / interval_n / 1000.0),
                  elapsed_and_eta(elapsed, step_ - first_step, t.steps - step_).c_str());
      std::fflush(stdout);
      interval_ms = interval_loss = 0;
      interval_n = 0;
    }
    if ((t.eval_interval > 0 && step_ % t.eval_interval == 0) || step_ == t.steps) {
      bar.finish();
      r.val_bpc = last_val = evaluate();  // (a collective: every process evaluates its share)
      seen_best.offer(last_val, step_);
      if (t.keep_best && !(last_val >= best_val_)) {  // also when best_val_ is NaN
        if (writer) save_best(last_val);
        best_val_ = last_val;
        best_step_ = step_;
      }
      if (writer) std::printf("step %6lld | val_bpc %.4f\n", static_cast<long long>(step_), last_val);
      std::fflush(stdout);
    }
    if (writer) write_metrics(r);
    history_.push_back(r);
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
  if (writer && step_ > first_step && !stop) {
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60.0;
    if (t.keep_best && best_step_ > 0) seen_best = BestValidation{false, best_val_, best_step_};  // across resumes
    report_done(first_step, step_, t.steps, minutes, "val bpc", last_val, seen_best, "", t.run_dir);
  }
  return last_val;
}

}  // namespace ctxpool::models
