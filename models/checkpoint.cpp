#include "models/checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "core/file_io.h"
#include "nn/serialize.h"

namespace ctxpool::models {

namespace fs = std::filesystem;

namespace {
constexpr const char* kFormat = "ctxpool-checkpoint-v1";

// The checksum of everything in the sidecar but itself: an edited step, RNG state, config or
// vocabulary no longer matches.
std::string sidecar_checksum(nlohmann::json side) {
  side.erase("sidecar_fnv1a64");
  return fnv1a_hex(side.dump());
}

std::string stem_for(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ckpt-%06lld", static_cast<long long>(step));
  return buf;
}
}  // namespace

void save_checkpoint(const std::string& run_dir, const Checkpoint& ckpt, int keep_last) {
  CTXPOOL_CHECK(keep_last >= 1, "save_checkpoint: keep_last must be at least 1, got ", keep_last);
  make_directories(run_dir);
  const std::string stem = stem_for(ckpt.step);
  std::map<std::string, Tensor> tensors;
  for (const auto& [k, t] : ckpt.model) tensors["model." + k] = t;
  for (const auto& [k, t] : ckpt.optimizer) tensors["optimizer." + k] = t;
  const std::string bytes = nn::to_safetensors(tensors, {{"format", kFormat}, {"step", std::to_string(ckpt.step)}});
  write_file_atomic(run_dir + "/" + stem + ".safetensors", bytes);

  nlohmann::json side = ckpt.sidecar;
  side["format"] = kFormat;
  side["step"] = ckpt.step;
  side["tensors"] = {{"file", stem + ".safetensors"}, {"bytes", bytes.size()}, {"fnv1a64", fnv1a_hex(bytes)}};
  side["sidecar_fnv1a64"] = sidecar_checksum(side);
  write_file_atomic(run_dir + "/" + stem + ".json", side.dump(2) + "\n");
  write_file_atomic(run_dir + "/latest", stem + ".json\n");

  // Only after `latest` points at the new checkpoint: drop the older ones beyond keep_last, by step
  // number (not name: 7-digit steps sort before 6-digit ones). Never the new one, nor later ones.
  std::vector<std::pair<int64_t, std::string>> older;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    const std::string stem = e.path().stem().string();
    if (stem.rfind("ckpt-", 0) != 0 || e.path().extension() != ".json") continue;
    const std::string digits = stem.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const int64_t step = std::stoll(digits);
    if (step < ckpt.step) older.emplace_back(step, stem);
  }
  std::sort(older.begin(), older.end());
  const size_t keep_older = static_cast<size_t>(keep_last - 1);
  for (size_t i = 0; i + keep_older < older.size(); ++i) {
    fs::remove(run_dir + "/" + older[i].second + ".json");
    fs::remove(run_dir + "/" + older[i].second + ".safetensors");
  }
}

bool has_checkpoint(const std::string& run_dir) { return file_exists(run_dir + "/latest"); }

namespace {
Checkpoint load_checkpoint_unchecked(const std::string& path);
}

Checkpoint load_checkpoint(const std::string& path) {
  try {
    return load_checkpoint_unchecked(path);
  } catch (const nlohmann::json::exception& e) {
    detail::fail("load_checkpoint: '", path, "' has a malformed sidecar: ", e.what());
  }
}

namespace {
Checkpoint load_checkpoint_unchecked(const std::string& path) {
  std::string sidecar_path = path;
  CTXPOOL_CHECK(fs::exists(path), "load_checkpoint: '", path, "' does not exist");
  if (fs::is_directory(path)) {
    CTXPOOL_CHECK(has_checkpoint(path), "load_checkpoint: no checkpoint in '", path, "' (no 'latest' file)");
    std::string name = read_file(path + "/latest");
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    CTXPOOL_CHECK(!name.empty() && name.find('/') == std::string::npos, "load_checkpoint: the 'latest' file in '",
                  path, "' is empty or damaged (it should name a ckpt-*.json file)");
    sidecar_path = path + "/" + name;
  }
  const std::string dir = fs::path(sidecar_path).parent_path().string();
  nlohmann::json side;
  try {
    side = nlohmann::json::parse(read_file(sidecar_path));
  } catch (const nlohmann::json::exception& e) {
    detail::fail("load_checkpoint: '", sidecar_path, "' is corrupted (not valid JSON: ", e.what(), ")");
  }
  CTXPOOL_CHECK(side.is_object() && side.value("format", "") == kFormat && side.contains("step") &&
                    side.contains("tensors") && side["tensors"].contains("file"),
                "load_checkpoint: '", sidecar_path, "' is not a ", kFormat, " sidecar");
  // Every sidecar carries its own checksum: without one, an edit (of the step, say) would go unnoticed.
  CTXPOOL_CHECK(side.contains("sidecar_fnv1a64"), "load_checkpoint: '", sidecar_path, "' has no checksum of "
                "itself (sidecar_fnv1a64): edited, or written by a ctxpool older than 2026-11-30; refusing it");
  CTXPOOL_CHECK(side["sidecar_fnv1a64"] == sidecar_checksum(side), "load_checkpoint: '", sidecar_path,
                "' does not match its recorded checksum (edited or corrupted)");
  const std::string tensor_file = side["tensors"]["file"].get<std::string>();
  CTXPOOL_CHECK(!tensor_file.empty() && tensor_file.find('/') == std::string::npos, "load_checkpoint: '",
                sidecar_path, "' names the tensor file '", tensor_file, "' (expected a file beside it)");
  const std::string tensor_path = (dir.empty() ? std::string(".") : dir) + "/" + tensor_file;
  const std::string bytes = read_file(tensor_path);
  const size_t want_bytes = side["tensors"].value("bytes", size_t(0));
  CTXPOOL_CHECK(bytes.size() == want_bytes, "load_checkpoint: '", tensor_path, "' has ", bytes.size(),
                " bytes but the checkpoint recorded ", want_bytes, " (truncated or replaced)");
  CTXPOOL_CHECK(fnv1a_hex(bytes) == side["tensors"].value("fnv1a64", ""), "load_checkpoint: '", tensor_path,
                "' does not match its recorded checksum (corrupted)");

  Checkpoint ckpt;
  ckpt.step = side["step"].get<int64_t>();
  ckpt.sidecar = side;
  for (auto& [name, t] : nn::from_safetensors(bytes, tensor_path)) {
    if (name.rfind("model.", 0) == 0) ckpt.model[name.substr(6)] = t;
    else if (name.rfind("optimizer.", 0) == 0) ckpt.optimizer[name.substr(10)] = t;
    else detail::fail("load_checkpoint: unexpected tensor '", name, "' in '", tensor_path, "'");
  }
  return ckpt;
}

}  // namespace

}  // namespace ctxpool::models
