#include "nn/data/idx.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace ctxpool::nn::data {

IdxArray read_idx(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CTXPOOL_CHECK(fs::exists(path, ec), "idx: '", path, "' does not exist (scripts/get_fashion_mnist.sh unpacks "
                "Fashion-MNIST into data/fashion-mnist)");
  CTXPOOL_CHECK(fs::is_regular_file(path, ec), "idx: '", path, "' is not a regular file");
  const uint64_t bytes = fs::file_size(path, ec);
  CTXPOOL_CHECK(!ec, "idx: cannot read the size of '", path, "': ", ec.message());
  std::ifstream in(path, std::ios::binary);
  CTXPOOL_CHECK(in.good(), "idx: cannot open '", path, "'");

  unsigned char magic[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(magic), 4);
  CTXPOOL_CHECK(in.gcount() == 4, "idx: '", path, "' is too short for an IDX header (", bytes, " bytes)");
  CTXPOOL_CHECK(magic[0] == 0 && magic[1] == 0, "idx: '", path, "' does not start with an IDX magic number (got bytes ",
                int(magic[0]), " ", int(magic[1]), ", expected 0 0): not an IDX file, or still gzip-compressed?");
  CTXPOOL_CHECK(magic[2] == 0x08, "idx: '", path, "' holds element type 0x", std::hex, int(magic[2]), std::dec,
                "; only unsigned bytes (0x08) are supported");
  const int ndims = magic[3];
  CTXPOOL_CHECK(ndims >= 1 && ndims <= 4, "idx: '", path, "' declares ", ndims, " dims (expected 1 to 4)");

  IdxArray out;
  uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    unsigned char be[4];
    in.read(reinterpret_cast<char*>(be), 4);
    CTXPOOL_CHECK(in.gcount() == 4, "idx: '", path, "' ends inside its header (dim ", d, " of ", ndims, ")");
    const uint64_t size = (uint64_t(be[0]) << 24) | (uint64_t(be[1]) << 16) | (uint64_t(be[2]) << 8) | be[3];
    out.dims.push_back(static_cast<int64_t>(size));
    count *= size;
  }
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndims);
  CTXPOOL_CHECK(bytes == header + count, "idx: '", path, "' has ", bytes, " bytes, but its header promises ",
                header + count, " (", count, " elements after a ", header, "-byte header): ",
                bytes < header + count ? "truncated" : "trailing bytes");
  out.values.resize(count);
  in.read(reinterpret_cast<char*>(out.values.data()), static_cast<std::streamsize>(count));
  CTXPOOL_CHECK(static_cast<uint64_t>(in.gcount()) == count, "idx: error while reading '", path, "'");
  return out;
}

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split) {
  CTXPOOL_CHECK(split == "train" || split == "test", "fashion-mnist: split must be \"train\" or \"test\", got \"",
                split, "\"");
  const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
  const IdxArray images = read_idx(prefix + "-images-idx3-ubyte");
  const IdxArray labels = read_idx(prefix + "-labels-idx1-ubyte");
  CTXPOOL_CHECK(images.dims.size() == 3 && images.dims[1] == 28 && images.dims[2] == 28, "fashion-mnist: '", prefix,
                "-images-idx3-ubyte' holds images of shape ", Shape(images.dims), ", expected [N, 28, 28]");
  CTXPOOL_CHECK(labels.dims.size() == 1 && labels.dims[0] == images.dims[0], "fashion-mnist: ", images.dims[0],
                " images but labels of shape ", Shape(labels.dims), " in '", dir, "'");
  const int64_t n = images.dims[0];
  std::vector<float> pixels(images.values.size());
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(images.values[i]) / 255.0f;
  std::vector<int64_t> classes(n);
  for (int64_t i = 0; i < n; ++i) {
    CTXPOOL_CHECK(labels.values[i] < 10, "fashion-mnist: label ", int(labels.values[i]), " of image ", i,
                  " is not a class (0..9)");
    classes[i] = labels.values[i];
  }
  return {from_vector(pixels, {n, 1, 28, 28}, kFloat32), from_vector(classes, {n}, kInt64), 10};
}

}  // namespace ctxpool::nn::data
