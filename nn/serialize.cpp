#include "nn/serialize.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/file_io.h"

namespace ctxpool::nn {

namespace {

const char* st_dtype(DType d) {
  switch (d) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = kFloat32;
  else if (s == "F64") *out = kFloat64;
  else if (s == "I64") *out = kInt64;
  else if (s == "BOOL") *out = kBool;
  else return false;
  return true;
}

}  // namespace

std::string to_safetensors(const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> contiguous;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CTXPOOL_CHECK(t.defined(), "safetensors: tensor '", name, "' is undefined");
    CTXPOOL_CHECK(name != "__metadata__", "safetensors: '__metadata__' is a reserved name");
    const Tensor c = t.detach().cpu().contiguous();
    header[name] = {{"dtype", st_dtype(c.dtype())}, {"shape", c.sizes()}, {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
    contiguous.push_back(c);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += json;
  out.reserve(out.size() + offset);
  for (const Tensor& c : contiguous) out.append(static_cast<const char*>(c.raw_data()), c.nbytes());
  return out;
}

std::map<std::string, Tensor> from_safetensors(const std::string& bytes, const std::string& source,
                                               std::map<std::string, std::string>* metadata) {
  CTXPOOL_CHECK(bytes.size() >= 8, "safetensors: '", source, "' is truncated (", bytes.size(), " bytes, no header)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CTXPOOL_CHECK(n <= bytes.size() - 8, "safetensors: '", source, "' is truncated or corrupted (header of ", n,
                " bytes in a file of ", bytes.size(), ")");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    detail::fail("safetensors: '", source, "' has a corrupted header: ", e.what());
  }
  CTXPOOL_CHECK(header.is_object(), "safetensors: '", source, "': the header is not a JSON object");
  const size_t data_start = 8 + n;
  const size_t data_size = bytes.size() - data_start;

  std::map<std::string, Tensor> out;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      CTXPOOL_CHECK(it->is_object(), "safetensors: '", source, "': __metadata__ must be an object");
      if (metadata) {
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) (*metadata)[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const nlohmann::json& e = it.value();
    DType dtype;
    const bool ok = e.is_object() && e.contains("dtype") && e["dtype"].is_string() &&
                    parse_dtype(e["dtype"].get<std::string>(), &dtype) && e.contains("shape") &&
                    e["shape"].is_array() && e.contains("data_offsets") && e["data_offsets"].is_array() &&
                    e["data_offsets"].size() == 2 && e["data_offsets"][0].is_number_unsigned() &&
                    e["data_offsets"][1].is_number_unsigned();
    CTXPOOL_CHECK(ok, "safetensors: '", source, "': entry '", name, "' is malformed or has an unsupported dtype");
    Shape shape;
    for (const auto& d : e["shape"]) {
      CTXPOOL_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= (uint64_t(1) << 62), "safetensors: '", source,
                    "': entry '", name, "' has a bad shape");
      shape.push_back(d.get<int64_t>());
    }
    const size_t begin = e["data_offsets"][0].get<size_t>(), end = e["data_offsets"][1].get<size_t>();
    const size_t expected = checked_nbytes(shape, element_size(dtype), "safetensors");
    CTXPOOL_CHECK(begin <= end && end <= data_size && end - begin == expected, "safetensors: '", source,
                  "': entry '", name, "' ", shape, " ", dtype, " has data offsets [", begin, ", ", end,
                  ") that do not fit ", expected, " bytes inside the ", data_size, "-byte data section");
    Tensor t = empty(shape, dtype);
    if (expected) std::memcpy(t.raw_data(), bytes.data() + data_start + begin, expected);
    out[name] = t;
    ranges.emplace_back(begin, end);
  }
  std::sort(ranges.begin(), ranges.end());
  size_t covered = 0;
  for (const auto& [b, e] : ranges) {
    CTXPOOL_CHECK(b == covered, "safetensors: '", source, "': tensor data overlaps or leaves a hole at byte ", b);
    covered = e;
  }
  CTXPOOL_CHECK(covered == data_size, "safetensors: '", source, "' has ", data_size - covered,
                " trailing bytes after the last tensor (corrupted?)");
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, to_safetensors(tensors, metadata));
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  return from_safetensors(read_file(path), path, metadata);
}

}  // namespace ctxpool::nn
