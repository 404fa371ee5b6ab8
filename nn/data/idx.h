// IDX files (the MNIST / Fashion-MNIST format) and the Fashion-MNIST image dataset.
//
// An IDX file is a 4-byte magic number (0, 0, element type, number of dims), one big-endian uint32
// size per dim, then the elements. Only unsigned bytes (type 0x08) occur in these datasets. The
// reader checks the magic number, the dims, and that the file holds exactly the elements they
// promise: a wrong, truncated or padded file is a clear error naming it, never garbage.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ctxpool::nn::data {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;  // row-major
};

IdxArray read_idx(const std::string& path);

// Images as float32 [N, 1, 28, 28] scaled to [0, 1], labels int64 [N] in 0..9.
struct ImageSet {
  Tensor images, labels;
  int64_t num_classes = 0;  // the dataset's classes (labels are in [0, num_classes)); 0: not known
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// "train" or "test" from the unpacked files in dir (scripts/get_fashion_mnist.sh puts them in
// data/fashion-mnist): images and labels must agree in count, and every label must be a class.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split);

}  // namespace ctxpool::nn::data
