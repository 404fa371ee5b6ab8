#include "nn/patch_embedding.h"

#include "ops/ops.h"

namespace ctxpool::nn {

PatchEmbedding::PatchEmbedding(int64_t in_channels, int64_t dim, int64_t patch_size, DType dtype)
    : Module("PatchEmbedding"), patch(patch_size) {
  CTXPOOL_CHECK(patch_size >= 1, "PatchEmbedding: patch size must be >= 1, got ", patch_size);
  Conv2dOptions o;
  o.stride = {patch_size, patch_size};
  o.dtype = dtype;
  proj = register_module("proj", std::make_shared<Conv2d>(in_channels, dim, patch_size, o));
}

Tensor PatchEmbedding::forward(const Tensor& x) {
  CTXPOOL_CHECK(x.defined() && x.dim() == 4, "PatchEmbedding: expected images [B, C, H, W], got ",
                x.defined() ? shape_str(x.sizes()) : "undefined");
  CTXPOOL_CHECK(x.sizes()[2] % patch == 0 && x.sizes()[3] % patch == 0, "PatchEmbedding: image ", x.sizes()[2], "x",
                x.sizes()[3], " is not a whole number of ", patch, "x", patch, " patches");
  return ops::permute(proj->forward(x), {0, 2, 3, 1});  // [B, d, H/p, W/p] -> [B, H/p, W/p, d]
}

}  // namespace ctxpool::nn
