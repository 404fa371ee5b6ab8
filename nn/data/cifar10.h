// CIFAR-10 from a tree of JPEG files, as ../shared/data/cifar10-jpeg.tar.gz holds it (scripts/
// get_cifar10.sh unpacks it into data/cifar10-jpeg): <dir>/<split>/<class name>/<NNNN>.jpg, 32x32 RGB,
// the class being the folder name. Caveat (../shared/data/README.md): these are lossy re-encodings
// of CIFAR-10, so accuracies are close to, not equal to, published CIFAR-10 numbers.
//
// Decoding 60,000 JPEGs takes tens of seconds, so the first load of a split writes a cache file
// <dir>/<split>.cache (written atomically; a header, the labels, the pixels as uint8 planes, and a
// checksum) that later loads read instead. The cache records a fingerprint of the JPEG tree (every
// file's path and size): a changed tree, or a truncated or altered cache, is decoded afresh.
#pragma once
#include <string>
#include <vector>

#include "nn/data/idx.h"

namespace ctxpool::nn::data {

// "airplane", "automobile", ..., "truck": the standard CIFAR-10 class order (class index = position).
const std::vector<std::string>& cifar10_classes();

// "train" or "test": images float32 [N, 3, 32, 32] in [0, 1], labels int64 [N], num_classes 10. The
// files are listed by class, then by file name, and the images come back in a fixed pseudo-random
// order of that list (the same on every machine), as the original CIFAR-10 batches are shuffled: so
// a validation split held out from the end of the training set has every class, in proportion.
// A missing folder, a non-JPEG or wrongly sized image is an error naming it.
ImageSet load_cifar10(const std::string& dir, const std::string& split);

}  // namespace ctxpool::nn::data
