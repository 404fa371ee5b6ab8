// safetensors (https://github.com/huggingface/safetensors) reading and writing: an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {...}}, then the raw little-endian data. Files written here open in any safetensors reader
// (Python's safetensors, PyTorch via it); files read here are validated before any byte is used.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace ctxpool::nn {

// Serialises CPU tensors (sorted by name) with optional string metadata.
std::string to_safetensors(const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata = {});
// Parses and checks a safetensors buffer: header size, JSON, dtypes, shapes, offsets (in range,
// matching sizes, no overlaps or holes). Any problem is an error naming `source` and the entry.
std::map<std::string, Tensor> from_safetensors(const std::string& bytes, const std::string& source = "<buffer>",
                                               std::map<std::string, std::string>* metadata = nullptr);

// Atomic write (temp file + fsync + rename) and checked read.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

}  // namespace ctxpool::nn
