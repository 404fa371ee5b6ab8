#include "models/train_utils.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "cuda/cuda_api.h"
#include "models/checkpoint.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "ops/ops.h"

namespace ctxpool::models {

std::unique_ptr<nn::optim::Optimizer> make_optimizer(const OptimConfig& o, nn::Module& model) {
  std::vector<Tensor> decay, no_decay;
  for (auto& [name, p] : model.named_parameters()) {
    const bool span = name.size() >= 7 && name.compare(name.size() - 7, 7, ".span.z") == 0;
    ((o.decay_matrices_only && p.dim() < 2) || span ? no_decay : decay).push_back(p);
  }
  std::vector<nn::optim::ParamGroup> groups{{decay, o.lr, o.weight_decay}};
  if (!no_decay.empty()) groups.push_back({no_decay, o.lr, 0.0});
  if (o.type == "sgd") {
    return std::make_unique<nn::optim::SGD>(groups, nn::optim::SGDOptions{o.lr, o.momentum, false, o.weight_decay});
  }
  return std::make_unique<nn::optim::AdamW>(groups, nn::optim::AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
}

Device training_device(const TrainConfig& t) {
  const Device device = parse_device(t.device);
  if (device.is_cuda()) {
    CTXPOOL_CHECK(cuda::built_with_cuda(), "trainer: train.device is '", t.device,
                  "' but ctxpool was built without CUDA (configure with the CUDA toolkit installed)");
    CTXPOOL_CHECK(device.index < cuda::device_count(), "trainer: train.device is '", t.device,
                  "' but this machine has ", cuda::device_count(), " CUDA device(s)");
    cuda::set_allow_tf32(t.allow_tf32);
  }
  return device;
}

void check_resume_config(const RunConfig& saved, const RunConfig& mine, const std::string& run_dir) {
  const auto same = [](const nlohmann::json& a, const nlohmann::json& b) { return a.dump() == b.dump(); };
  nlohmann::json m = mine.to_json(), s = saved.to_json();
  // Sizes left at 0 mean "from the data": the checkpoint has the values they were given.
  if (mine.model.vocab_size == 0) m["model"]["vocab_size"] = saved.model.vocab_size;
  if (mine.model.is_image_model()) {
    for (const char* key : {"in_channels", "image_size", "num_classes"})
      if (m["model"]["image"][key] == 0) m["model"]["image"][key] = s["model"]["image"][key];
  }
  nlohmann::json data_m = m["data"], data_s = s["data"];
  data_m.erase("path"), data_s.erase("path");  // the same data may live elsewhere now
  // Name every key that differs (nlohmann's JSON-patch diff gives their paths).
  const nlohmann::json a = {{"model", s["model"]}, {"optim", s["optim"]}, {"data", data_s},
                            {"train", {{"batch_size", saved.train.batch_size}, {"seed", saved.train.seed}}}};
  const nlohmann::json b = {{"model", m["model"]}, {"optim", m["optim"]}, {"data", data_m},
                            {"train", {{"batch_size", mine.train.batch_size}, {"seed", mine.train.seed}}}};
  if (same(a, b)) return;
  std::string keys;
  for (const auto& op : nlohmann::json::diff(a, b)) {
    std::string path = op.value("path", "");
    for (char& ch : path) ch = ch == '/' ? '.' : ch;
    keys += (keys.empty() ? "" : ", ") + path.substr(path.empty() ? 0 : 1);
  }
  detail::fail("resume: the config differs from the checkpoint's in '", run_dir, "' at ", keys,
               "; resume with the run's own config (ctxpool-train --resume --run-dir DIR)");
}

void prepare_run_dir(const TrainConfig& t, bool resume) {
  namespace fs = std::filesystem;
  make_directories(t.run_dir);
  // Leftovers of a save that was interrupted (write_file_atomic's "<name>.tmp.<pid>").
  for (const auto& e : fs::directory_iterator(t.run_dir))
    if (e.is_regular_file() && e.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(e.path());
  if (resume) return;
  const bool holds_run = has_checkpoint(t.run_dir) || (file_exists(t.run_dir + "/metrics.jsonl") &&
                                                       !read_file(t.run_dir + "/metrics.jsonl").empty());
  if (!holds_run) return;
  CTXPOOL_CHECK(t.overwrite, "trainer: '", t.run_dir, "' already holds a run; continue it with --resume, or start "
                "afresh with --overwrite (train.overwrite: deletes its checkpoints and metrics)");
  for (const auto& e : fs::directory_iterator(t.run_dir)) {
    const std::string name = e.path().filename().string();
    const bool ours = name.rfind("ckpt-", 0) == 0 || name == "latest" || name == "metrics.jsonl" ||
                      name == "best.json" || name == "best.safetensors" || name == "model.json" || name == "result.json";
    if (e.is_regular_file() && ours) fs::remove(e.path());
  }
}

void truncate_metrics(const std::string& metrics_path, int64_t step) {
  std::istringstream in(file_exists(metrics_path) ? read_file(metrics_path) : "");
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t(0)) <= step) kept += line + "\n";
  }
  write_file_atomic(metrics_path, kept);
}

void append_metrics(const std::string& metrics_path, const nlohmann::json& record) {
  std::ofstream out(metrics_path, std::ios::app);
  out << record.dump() << "\n";
  out.close();  // flushed now, and a full disk shows here rather than in a destructor that cannot report it
  CTXPOOL_CHECK(!out.fail(), "trainer: cannot append to '", metrics_path, "' (disk full or not writable?)");
}

nlohmann::json generator_json(const Generator& g) { return {{"seed", g.seed()}, {"offset", g.offset()}}; }

namespace {
// "'runs/x/ckpt-000500.json'", or "none yet".
std::string last_checkpoint(const std::string& run_dir) {
  if (!file_exists(run_dir + "/latest")) return "none yet";
  std::string name = read_file(run_dir + "/latest");
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return "'" + run_dir + "/" + name + "'";
}
}  // namespace

void check_finite_parameters(const std::vector<Tensor>& params, int64_t step, const std::string& run_dir) {
  autograd::NoGradGuard no_grad;
  for (const Tensor& p : params) {
    // A sum of |p| is NaN or inf exactly when some element is (or the weights are ~1e38: unusable too).
    const double total = ops::sum(ops::abs(p.to(kFloat64))).item();
    CTXPOOL_CHECK(std::isfinite(total), "trainer: after step ", step, " the weights are no longer finite (NaN or "
                  "inf, a parameter of shape ", shape_str(p.sizes()), "); no checkpoint written. The last good "
                  "checkpoint is kept (", last_checkpoint(run_dir), "). Lower optim.lr or clip gradients "
                  "(optim.grad_clip)");
  }
}

void fail_nonfinite(int64_t step, double loss, double grad_norm, const std::string& run_dir) {
  const std::string last = last_checkpoint(run_dir);
  detail::fail("trainer: step ", step, " gave a non-finite ", std::isfinite(loss) ? "gradient norm (" : "loss (",
               std::isfinite(loss) ? grad_norm : loss, "); stopped before updating the weights. The last good "
               "checkpoint is kept (", last, "). Lower optim.lr, clip gradients (optim.grad_clip), or set "
               "train.skip_nonfinite to skip such steps");
}

void report_done(int64_t first_step, int64_t step, int64_t steps, double minutes, const char* metric,
                 double final_value, const BestValidation& best, const std::string& extra, const std::string& run_dir) {
  if (step < steps) {
    std::printf("stopped after step %lld of %lld (train.stop_after) in %.1f min", static_cast<long long>(step),
                static_cast<long long>(steps), minutes);
  } else {
    std::printf("done: steps %lld-%lld in %.1f min", static_cast<long long>(first_step + 1),
                static_cast<long long>(step), minutes);
  }
  if (!std::isnan(final_value)) std::printf(" | last %s %.4f", metric, final_value);
  if (best.step > 0) std::printf(" | best %.4f (step %lld)", best.value, static_cast<long long>(best.step));
  std::printf("%s | checkpoints in %s\n", extra.c_str(), run_dir.c_str());
  if (step < steps) std::printf("resume with: ctxpool-train --resume --run-dir %s\n", run_dir.c_str());
  std::fflush(stdout);
}

void report_stopped(int64_t step, int64_t steps, const std::string& run_dir) {
  std::printf("\nstopped by a signal after step %lld of %lld; checkpoint written to %s\n"
              "resume with: ctxpool-train --resume --run-dir %s\n",
              static_cast<long long>(step), static_cast<long long>(steps), run_dir.c_str(), run_dir.c_str());
  std::fflush(stdout);
}

void check_distributed_config(const RunConfig& config, const nn::parallel::Communicator& comm, const Device& device) {
  if (comm.size() == 1) return;
  CTXPOOL_CHECK(comm.supports(device), "distributed: training on ", device, " across processes needs a communicator "
                "for that device, not ", comm.describe(), " (CUDA: nn::parallel::nccl_communicator, which "
                "ctxpool-train --distributed uses for a CUDA device)");
  CTXPOOL_CHECK(config.train.batch_size % comm.size() == 0, "distributed: train.batch_size ", config.train.batch_size,
                " does not split evenly over ", comm.size(), " processes");
  // Every process would draw the same dropout masks (one seed): the shards would not add up to one
  // process's step, and the masks would be correlated across the batch.
  CTXPOOL_CHECK(config.model.dropout == 0.0, "distributed: model.dropout ", config.model.dropout,
                " is not supported across processes yet (set it to 0)");
}

void check_same_start(nn::parallel::Communicator& comm, int64_t step, const std::string& run_dir) {
  if (comm.size() == 1) return;
  const Tensor steps = scalar_tensor(static_cast<double>(step), kFloat64).reshape({1});
  comm.all_reduce_sum(steps);
  CTXPOOL_CHECK(steps.item() == static_cast<double>(step) * comm.size(), "distributed: the processes start at "
                "different steps (this one at ", step, "): the run directory '", run_dir, "' must be one directory "
                "that every process sees (a shared file system across machines)");
}

StepAgreement agree_on_step(nn::parallel::Communicator& comm, double loss, bool stop) {
  if (comm.size() == 1) return {loss, stop};
  const Tensor shared = from_vector(std::vector<double>{loss, stop ? 1.0 : 0.0}, {2}, kFloat64);
  comm.all_reduce_sum(shared);
  const std::vector<double> v = shared.to_vector<double>();
  return {v[0] / comm.size(), v[1] > 0};
}

}  // namespace ctxpool::models
