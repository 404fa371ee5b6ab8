#include "models/config.h"

#include <filesystem>
#include <cmath>
#include <initializer_list>
#include <set>

#include "core/device.h"
#include "core/error.h"
#include "core/file_io.h"

namespace ctxpool::models {

namespace {

// Reads the keys of one JSON object, checking types; unknown keys are reported by finish().
class Section {
 public:
  Section(const nlohmann::json& j, std::string name) : j_(j), name_(std::move(name)) {
    CTXPOOL_CHECK(j.is_object(), "config: '", name_, "' must be an object, got ", j.type_name());
  }
  template <typename T>
  void read(const char* key, T& into) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    const nlohmann::json& v = j_.at(key);
    const std::string path = name_ + "." + key;
    if constexpr (std::is_same_v<T, bool>) {
      CTXPOOL_CHECK(v.is_boolean(), "config: '", path, "' must be true or false, got ", v.type_name());
    } else if constexpr (std::is_integral_v<T>) {
      CTXPOOL_CHECK(v.is_number_integer(), "config: '", path, "' must be an integer, got ", v.dump());
      CTXPOOL_CHECK(std::is_signed_v<T> || v.get<int64_t>() >= 0, "config: '", path, "' must be >= 0");
    } else if constexpr (std::is_floating_point_v<T>) {
      CTXPOOL_CHECK(v.is_number(), "config: '", path, "' must be a number, got ", v.type_name());
    } else {
      CTXPOOL_CHECK(v.is_string(), "config: '", path, "' must be a string, got ", v.type_name());
    }
    into = v.get<T>();
  }
  // A nested object: true (and marked as seen) when present.
  bool has(const char* key) {
    seen_.insert(key);
    return j_.contains(key);
  }
  const nlohmann::json& at(const char* key) const { return j_.at(key); }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      CTXPOOL_CHECK(seen_.count(it.key()), "config: unknown key '", name_, ".", it.key(), "'");
  }

 private:
  const nlohmann::json& j_;
  std::string name_;
  std::set<std::string> seen_;
};

}  // namespace

void ModelConfig::validate() const {
  auto positive = [](const char* key, auto v) {
    CTXPOOL_CHECK(v > 0, "config: 'model.", key, "' must be positive, got ", v);
  };
  auto at_least_zero = [](const char* key, double v) {
    CTXPOOL_CHECK(v >= 0, "config: 'model.", key, "' must be >= 0, got ", v);
  };
  auto one_of = [](const char* key, const std::string& v, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += list.empty() ? std::string("\"") + a + "\"" : std::string(", \"") + a + "\"";
    }
    detail::fail("config: 'model.", key, "' must be one of ", list, ", got \"", v, "\"");
  };
  one_of("type", type, {"transformer_lm", "vit", "convnet"});
  at_least_zero("n_layers", static_cast<double>(n_layers));
  positive("d_model", d_model);
  positive("n_heads", n_heads);
  positive("d_mlp", d_mlp);
  positive("context", context);
  CTXPOOL_CHECK(d_model % n_heads == 0, "config: 'model.d_model' (", d_model, ") must be divisible by n_heads (",
                n_heads, ")");
  one_of("gelu", gelu, {"none", "tanh"});
  one_of("dtype", dtype, {"float32", "float64"});
  CTXPOOL_CHECK(dtype == "float32" || !is_image_model(), "config: 'model.dtype' ", dtype,
                " is for language models; image models train in float32");
  one_of("attention", attention, {"full", "local", "adaptive_span"});
  positive("local_window", local_window);
  at_least_zero("adaptive_span.max_span", static_cast<double>(adaptive_span.max_span));
  positive("adaptive_span.ramp", adaptive_span.ramp);
  CTXPOOL_CHECK(adaptive_span.init >= 0 && adaptive_span.init <= 1, "config: 'model.adaptive_span.init' must be in "
                "[0, 1], got ", adaptive_span.init);
  at_least_zero("adaptive_span.lambda", adaptive_span.lambda);
  const ContextPoolConfig& cp = context_pool;
  one_of("context_pool.mode", cp.mode, {"full", "weights_only", "uniform"});
  one_of("context_pool.placement", cp.placement, {"attn_input", "between"});
  one_of("context_pool.pooled", cp.pooled, {"kv", "qkv"});
  at_least_zero("context_pool.window", static_cast<double>(cp.window));
  CTXPOOL_CHECK(cp.s_min >= 1e-3, "config: 'model.context_pool.s_min' must be >= 1e-3, got ", cp.s_min);
  CTXPOOL_CHECK(cp.s_max == 0 || cp.s_max >= cp.s_min, "config: 'model.context_pool.s_max' (", cp.s_max,
                ") must be >= s_min (", cp.s_min, "), or 0 for the default");
  CTXPOOL_CHECK(cp.s_fixed == 0 || cp.s_fixed >= 1e-3, "config: 'model.context_pool.s_fixed' must be >= 1e-3, or 0 "
                "for the default, got ", cp.s_fixed);
  at_least_zero("context_pool.hidden", static_cast<double>(cp.hidden));
  positive("context_pool.kernel_size", cp.kernel_size);
  at_least_zero("context_pool.lambda", cp.lambda);
  if (is_image_model()) validate_image();
  CTXPOOL_CHECK(cp.lambda == 0 || cp.mode == "full", "config: 'model.context_pool.lambda' regularises learned support "
                "sizes and needs mode \"full\" (mode is \"", cp.mode, "\")");
}

void ModelConfig::validate_image() const {
  const ImageModelConfig& im = image;
  CTXPOOL_CHECK(im.in_channels >= 0 && im.image_size >= 0 && im.num_classes >= 0, "config: 'model.image' sizes "
                "must be >= 0 (0: from the dataset)");
  CTXPOOL_CHECK(attention == "full", "config: model.type \"", type, "\" supports attention \"full\" only, got \"",
                attention, "\"");
  CTXPOOL_CHECK(context_pool.kernel_size % 2 == 1, "config: 'model.context_pool.kernel_size' must be odd for an "
                "image model (padding k / 2 keeps the grid), got ", context_pool.kernel_size);
  if (type == "vit") {
    CTXPOOL_CHECK(im.patch_size > 0, "config: 'model.image.patch_size' must be positive, got ", im.patch_size);
    CTXPOOL_CHECK(im.image_size == 0 || im.image_size % im.patch_size == 0, "config: 'model.image.image_size' (",
                  im.image_size, ") must be a multiple of patch_size (", im.patch_size, ")");
    CTXPOOL_CHECK(im.pooling == "cls" || im.pooling == "mean", "config: 'model.image.pooling' must be \"cls\" or "
                  "\"mean\", got \"", im.pooling, "\"");
  } else {
    CTXPOOL_CHECK(!im.channels.empty(), "config: 'model.image.channels' needs at least one stage");
    for (int64_t c : im.channels)
      CTXPOOL_CHECK(c > 0, "config: 'model.image.channels' must be positive, got ", c);
    CTXPOOL_CHECK(im.convs_per_stage > 0, "config: 'model.image.convs_per_stage' must be positive, got ",
                  im.convs_per_stage);
    CTXPOOL_CHECK(im.downsample == "max_pool" || im.downsample == "context_pool", "config: 'model.image.downsample' "
                  "must be \"max_pool\" or \"context_pool\", got \"", im.downsample, "\"");
    CTXPOOL_CHECK(!context_pool.residual || im.downsample != "context_pool", "config: a downsampling ContextPool "
                  "(stride 2) cannot be residual: set model.context_pool.residual to false");
  }
}

RunConfig RunConfig::from_json(const nlohmann::json& j) {
  RunConfig c;
  CTXPOOL_CHECK(j.is_object(), "config: the top level must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    CTXPOOL_CHECK(k == "model" || k == "data" || k == "optim" || k == "schedule" || k == "train" || k == "comment",
                  "config: unknown key '", k, "' (expected model, data, optim, schedule, train)");
  }
  if (j.contains("model")) {
    Section s(j["model"], "model");
    ModelConfig& m = c.model;
    s.read("type", m.type);
    s.read("vocab_size", m.vocab_size);
    s.read("n_layers", m.n_layers);
    s.read("d_model", m.d_model);
    s.read("n_heads", m.n_heads);
    s.read("d_mlp", m.d_mlp);
    s.read("context", m.context);
    s.read("dropout", m.dropout);
    s.read("init_std", m.init_std);
    s.read("gelu", m.gelu);
    s.read("dtype", m.dtype);
    s.read("attention", m.attention);
    s.read("local_window", m.local_window);
    if (s.has("adaptive_span")) {
      Section a(s.at("adaptive_span"), "model.adaptive_span");
      a.read("max_span", m.adaptive_span.max_span);
      a.read("ramp", m.adaptive_span.ramp);
      a.read("init", m.adaptive_span.init);
      a.read("lambda", m.adaptive_span.lambda);
      a.finish();
    }
    if (s.has("context_pool")) {
      Section p(s.at("context_pool"), "model.context_pool");
      ContextPoolConfig& cp = m.context_pool;
      p.read("enabled", cp.enabled);
      p.read("window", cp.window);
      p.read("mode", cp.mode);
      p.read("residual", cp.residual);
      p.read("placement", cp.placement);
      p.read("pooled", cp.pooled);
      p.read("s_min", cp.s_min);
      p.read("s_max", cp.s_max);
      p.read("s_fixed", cp.s_fixed);
      p.read("hidden", cp.hidden);
      p.read("kernel_size", cp.kernel_size);
      p.read("lambda", cp.lambda);
      p.finish();
    }
    if (s.has("image")) {
      Section p(s.at("image"), "model.image");
      ImageModelConfig& im = m.image;
      p.read("in_channels", im.in_channels);
      p.read("image_size", im.image_size);
      p.read("num_classes", im.num_classes);
      p.read("patch_size", im.patch_size);
      p.read("pooling", im.pooling);
      if (p.has("channels")) {
        const nlohmann::json& v = p.at("channels");
        CTXPOOL_CHECK(v.is_array(), "config: 'model.image.channels' must be a list of integers, got ", v.dump());
        im.channels.clear();
        for (const auto& c : v) {
          CTXPOOL_CHECK(c.is_number_integer(), "config: 'model.image.channels' must be a list of integers, got ",
                        v.dump());
          im.channels.push_back(c.get<int64_t>());
        }
      }
      p.read("convs_per_stage", im.convs_per_stage);
      p.read("downsample", im.downsample);
      p.finish();
    }
    s.finish();
  }
  if (j.contains("data")) {
    Section s(j["data"], "data");
    DataConfig& d = c.data;
    s.read("dataset", d.dataset);
    CTXPOOL_CHECK(d.dataset == "text" || d.dataset == "fashion_mnist" || d.dataset == "cifar10", "config: "
                  "'data.dataset' must be \"text\", \"fashion_mnist\" or \"cifar10\", got \"", d.dataset, "\"");
    if (d.dataset == "fashion_mnist") d.path = "data/fashion-mnist";  // the dataset's default, unless given
    if (d.dataset == "cifar10") d.path = "data/cifar10-jpeg";
    s.read("path", d.path);
    s.read("train_fraction", d.train_fraction);
    s.read("validation_fraction", d.validation_fraction);
    s.read("validation_size", d.validation_size);
    s.read("crop_padding", d.crop_padding);
    s.read("horizontal_flip", d.horizontal_flip);
    s.read("normalize", d.normalize);
    s.finish();
  }
  CTXPOOL_CHECK(c.data.validation_size >= 0 && c.data.crop_padding >= 0, "config: 'data.validation_size' and "
                "'data.crop_padding' must be >= 0");
  CTXPOOL_CHECK(c.model.is_image_model() == c.data.is_images(), "config: model.type \"", c.model.type,
                "\" cannot train on data.dataset \"", c.data.dataset, "\" (language models read text, image "
                "classifiers images)");
  if (j.contains("optim")) {
    Section s(j["optim"], "optim");
    OptimConfig& o = c.optim;
    s.read("type", o.type);
    s.read("lr", o.lr);
    s.read("beta1", o.beta1);
    s.read("beta2", o.beta2);
    s.read("eps", o.eps);
    s.read("momentum", o.momentum);
    s.read("weight_decay", o.weight_decay);
    s.read("decay_matrices_only", o.decay_matrices_only);
    s.read("grad_clip", o.grad_clip);
    s.finish();
  }
  if (j.contains("schedule")) {
    Section s(j["schedule"], "schedule");
    s.read("warmup_steps", c.schedule.warmup_steps);
    s.read("min_lr_ratio", c.schedule.min_lr_ratio);
    s.finish();
  }
  if (j.contains("train")) {
    Section s(j["train"], "train");
    TrainConfig& t = c.train;
    s.read("steps", t.steps);
    s.read("batch_size", t.batch_size);
    s.read("eval_interval", t.eval_interval);
    s.read("eval_batch_size", t.eval_batch_size);
    s.read("max_eval_windows", t.max_eval_windows);
    s.read("log_interval", t.log_interval);
    s.read("checkpoint_interval", t.checkpoint_interval);
    s.read("keep_checkpoints", t.keep_checkpoints);
    s.read("stop_after", t.stop_after);
    s.read("overwrite", t.overwrite);
    s.read("skip_nonfinite", t.skip_nonfinite);
    s.read("keep_best", t.keep_best);
    s.read("seed", t.seed);
    s.read("threads", t.threads);
    s.read("device", t.device);
    s.read("allow_tf32", t.allow_tf32);
    s.read("run_dir", t.run_dir);
    s.finish();
  }
  c.model.validate();
  parse_device(c.train.device);  // a clear error for "gpu" and friends, before any training starts
  CTXPOOL_CHECK(c.optim.type == "adamw" || c.optim.type == "sgd", "config: 'optim.type' must be \"adamw\" or \"sgd\"");
  c.validate_hyperparameters();
  CTXPOOL_CHECK(c.train.steps > 0 && c.train.batch_size > 0 && c.train.eval_batch_size > 0 && c.train.log_interval > 0,
                "config: train.steps, batch_size, eval_batch_size and log_interval must be positive");
  return c;
}

// Values no run can use are refused before any training starts, each naming its key.
void RunConfig::validate_hyperparameters() const {
  auto check = [](bool ok, const char* key, double v, const char* want) {
    CTXPOOL_CHECK(ok, "config: '", key, "' must be ", want, ", got ", v);
  };
  check(optim.lr > 0 && std::isfinite(optim.lr), "optim.lr", optim.lr, "positive");
  check(optim.beta1 >= 0 && optim.beta1 < 1, "optim.beta1", optim.beta1, "in [0, 1)");
  check(optim.beta2 >= 0 && optim.beta2 < 1, "optim.beta2", optim.beta2, "in [0, 1)");
  check(optim.eps > 0, "optim.eps", optim.eps, "positive");
  check(optim.momentum >= 0 && optim.momentum < 1, "optim.momentum", optim.momentum, "in [0, 1)");
  check(optim.weight_decay >= 0, "optim.weight_decay", optim.weight_decay, ">= 0");
  check(optim.grad_clip >= 0, "optim.grad_clip", optim.grad_clip, ">= 0 (0: off)");
  check(schedule.warmup_steps >= 0, "schedule.warmup_steps", static_cast<double>(schedule.warmup_steps), ">= 0");
  check(schedule.min_lr_ratio >= 0 && schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio", schedule.min_lr_ratio,
        "in [0, 1]");
  check(model.init_std > 0, "model.init_std", model.init_std, "positive");
  check(model.dropout >= 0 && model.dropout < 1, "model.dropout", model.dropout, "in [0, 1)");
  check(train.eval_interval >= 0, "train.eval_interval", static_cast<double>(train.eval_interval), ">= 0 (0: at the end)");
  check(train.checkpoint_interval >= 0, "train.checkpoint_interval", static_cast<double>(train.checkpoint_interval),
        ">= 0 (0: at the end)");
  check(train.keep_checkpoints >= 1, "train.keep_checkpoints", static_cast<double>(train.keep_checkpoints), ">= 1");
  check(train.stop_after >= 0, "train.stop_after", static_cast<double>(train.stop_after), ">= 0");
  check(train.max_eval_windows >= 0, "train.max_eval_windows", static_cast<double>(train.max_eval_windows), ">= 0");
  check(train.threads >= 0, "train.threads", static_cast<double>(train.threads), ">= 0 (0: all cores)");
  check(data.train_fraction > 0 && data.validation_fraction > 0 &&
            data.train_fraction + data.validation_fraction <= 1.0 + 1e-12,
        "data.train_fraction + data.validation_fraction", data.train_fraction + data.validation_fraction,
        "at most 1, both positive");
  CTXPOOL_CHECK(!train.run_dir.empty(), "config: 'train.run_dir' must not be empty");
}

RunConfig RunConfig::from_file(const std::string& path) {
  const std::string text = read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    detail::fail("config: '", path, "' is not valid JSON: ", e.what());
  }
  RunConfig cfg = from_json(j);
  cfg.data.base_dir = std::filesystem::path(path).parent_path().string();
  return cfg;
}

nlohmann::json RunConfig::to_json() const {
  const ContextPoolConfig& cp = model.context_pool;
  nlohmann::json j = {
      {"model", {{"type", model.type}, {"vocab_size", model.vocab_size}, {"n_layers", model.n_layers},
                 {"d_model", model.d_model}, {"n_heads", model.n_heads}, {"d_mlp", model.d_mlp},
                 {"context", model.context}, {"dropout", model.dropout}, {"init_std", model.init_std},
                 {"gelu", model.gelu}, {"attention", model.attention}, {"local_window", model.local_window},
                 {"adaptive_span", {{"max_span", model.adaptive_span.max_span}, {"ramp", model.adaptive_span.ramp},
                                    {"init", model.adaptive_span.init}, {"lambda", model.adaptive_span.lambda}}},
                 {"context_pool", {{"enabled", cp.enabled}, {"window", cp.window}, {"mode", cp.mode},
                                   {"residual", cp.residual}, {"placement", cp.placement}, {"pooled", cp.pooled},
                                   {"s_min", cp.s_min}, {"s_max", cp.s_max}, {"s_fixed", cp.s_fixed},
                                   {"hidden", cp.hidden}, {"kernel_size", cp.kernel_size}, {"lambda", cp.lambda}}}}},
      {"data", {{"path", data.path}, {"train_fraction", data.train_fraction},
                {"validation_fraction", data.validation_fraction}}},
      {"optim", {{"type", optim.type}, {"lr", optim.lr}, {"beta1", optim.beta1}, {"beta2", optim.beta2},
                 {"eps", optim.eps}, {"momentum", optim.momentum}, {"weight_decay", optim.weight_decay},
                 {"decay_matrices_only", optim.decay_matrices_only}, {"grad_clip", optim.grad_clip}}},
      {"schedule", {{"warmup_steps", schedule.warmup_steps}, {"min_lr_ratio", schedule.min_lr_ratio}}},
      {"train", {{"steps", train.steps}, {"batch_size", train.batch_size}, {"eval_interval", train.eval_interval},
                 {"eval_batch_size", train.eval_batch_size}, {"max_eval_windows", train.max_eval_windows},
                 {"log_interval", train.log_interval}, {"checkpoint_interval", train.checkpoint_interval},
                 {"keep_checkpoints", train.keep_checkpoints},
                 {"stop_after", train.stop_after}, {"overwrite", train.overwrite}, {"skip_nonfinite", train.skip_nonfinite}, {"keep_best", train.keep_best}, {"seed", train.seed}, {"threads", train.threads},
                 {"device", train.device}, {"allow_tf32", train.allow_tf32}, {"run_dir", train.run_dir}}},
  };
  // Image settings only where they apply, so that a language model's config reads as before.
  if (model.is_image_model()) {
    const ImageModelConfig& im = model.image;
    j["model"]["image"] = {{"in_channels", im.in_channels}, {"image_size", im.image_size},
                           {"num_classes", im.num_classes}, {"patch_size", im.patch_size},
                           {"pooling", im.pooling}, {"channels", im.channels},
                           {"convs_per_stage", im.convs_per_stage}, {"downsample", im.downsample}};
  }
  if (data.is_images()) {
    j["data"] = {{"dataset", data.dataset}, {"path", data.path}, {"validation_size", data.validation_size},
                 {"crop_padding", data.crop_padding}, {"horizontal_flip", data.horizontal_flip},
                 {"normalize", data.normalize}};
  }
  // Written only when not the default, so configs and checkpoints from before the key compare equal.
  if (model.dtype != "float32") j["model"]["dtype"] = model.dtype;
  return j;
}

}  // namespace ctxpool::models
