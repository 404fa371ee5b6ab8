#include "models/train_utils.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/file_io.h"
#include "cuda/cuda_api.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"

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
  CTXPOOL_CHECK(same(s["model"], m["model"]) && same(s["optim"], m["optim"]) && same(data_s, data_m) &&
                    saved.train.batch_size == mine.train.batch_size && saved.train.seed == mine.train.seed,
                "resume: the config differs from the checkpoint's in '", run_dir, "' in model, optim, data, batch "
                "size or seed; resume with the run's own config (ctxpool-train --resume --run-dir DIR)");
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
  CTXPOOL_CHECK(out.good(), "trainer: cannot append to '", metrics_path, "'");
}

nlohmann::json generator_json(const Generator& g) { return {{"seed", g.seed()}, {"offset", g.offset()}}; }

void fail_nonfinite(int64_t step, double loss, double grad_norm, const std::string& run_dir) {
  std::string last = "none yet";
  if (file_exists(run_dir + "/latest")) last = "'" + run_dir + "/" + read_file(run_dir + "/latest") + "'";
  while (!last.empty() && (last.back() == '\n' || last.back() == ' ')) last.pop_back();
  detail::fail("trainer: step ", step, " gave a non-finite ", std::isfinite(loss) ? "gradient norm (" : "loss (",
               std::isfinite(loss) ? grad_norm : loss, "); stopped before updating the weights. The last good "
               "checkpoint is kept (", last, "). Lower optim.lr, clip gradients (optim.grad_clip), or set "
               "train.skip_nonfinite to skip such steps");
}

void report_stopped(int64_t step, int64_t steps, const std::string& run_dir) {
  std::printf("\nstopped by a signal after step %lld of %lld; checkpoint written to %s\n"
              "resume with: ctxpool-train --resume --run-dir %s\n",
              static_cast<long long>(step), static_cast<long long>(steps), run_dir.c_str(), run_dir.c_str());
  std::fflush(stdout);
}

}  // namespace ctxpool::models
