// Batches for image classifiers: gather, the standard light augmentation (random crop from the
// zero-padded image, horizontal flip), then per-channel normalisation, in that order (as
// torchvision's RandomCrop(padding) + RandomHorizontalFlip + Normalize).
// Every random choice comes from the Philox stream (seed, stream): the same batch on every run,
// machine and thread, so training resumes exactly and a background thread may build it.
#pragma once
#include <cstdint>
#include <vector>

#include "nn/data/idx.h"

namespace ctxpool::nn::data {

struct ImageTransform {
  std::vector<float> mean, std;  // per channel, applied after augmentation; empty: no normalisation
  int64_t crop_padding = 0;      // > 0: a random H x W crop of the image zero-padded by this on each side
  bool horizontal_flip = false;  // mirror left-right with probability 1/2
};

// Per-channel mean and standard deviation (population) of images [N, C, H, W], in float64 sums.
void channel_stats(const Tensor& images, std::vector<float>& mean, std::vector<float>& std);

// images[indices] transformed -> (float32 [n, C, H, W], int64 [n]). `augment` false: normalisation
// only (evaluation). An index out of range is an error. The random crop and flip of an image depend
// on (seed, stream) and its position in the batch; first_position > 0 makes `indices` positions
// first_position, first_position + 1, ... of a larger batch (one process's shard of a global batch:
// the same augmentation as the whole batch made in one process).
ImageSet make_image_batch(const ImageSet& set, const std::vector<int64_t>& indices, const ImageTransform& transform,
                          bool augment, uint64_t seed, uint64_t stream, int64_t first_position = 0);

// The rows [first, first + count) of a set, copied (a validation split held out of the training set).
ImageSet image_subset(const ImageSet& set, int64_t first, int64_t count);

}  // namespace ctxpool::nn::data
