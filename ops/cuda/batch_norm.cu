// Batch normalisation's per-channel passes on CUDA, with the semantics of ops/cpu/batch_norm.cpp:
// x viewed as contiguous [B, C, S]. The two reductions give each channel to one block (a grid-stride
// loop over channels): every thread sums a fixed set of elements in double, then a fixed tree over
// the block (block_reduce), so a channel's sums are the same bits on every run. The affine map is
// elementwise.
#include <cstdint>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_batch_norm_kernels at the end).
namespace {

struct Layout {
  int64_t b, c, s;
};
Layout layout_of(const Tensor& x) { return {x.sizes()[0], x.sizes()[1], x.numel() / (x.sizes()[0] * x.sizes()[1])}; }

// Element i in [0, B * S) of channel c.
__device__ inline int64_t at(const Layout& l, int64_t c, int64_t i) { return ((i / l.s) * l.c + c) * l.s + i % l.s; }

template <typename T>
__global__ void stats_kernel(const T* x, T* mean, T* var, Layout l) {
  const int64_t n = l.b * l.s;
  for (int64_t c = blockIdx.x; c < l.c; c += gridDim.x) {
    double sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += static_cast<double>(x[at(l, c, i)]);
    const double m = block_reduce(sum, SumOp{}) / static_cast<double>(n);
    double sq = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const double d = static_cast<double>(x[at(l, c, i)]) - m;
      sq += d * d;
    }
    const double v = block_reduce(sq, SumOp{}) / static_cast<double>(n);
    if (threadIdx.x == 0) {
      mean[c] = static_cast<T>(m);
      var[c] = static_cast<T>(v);
    }
  }
}

template <typename T>
__global__ void grad_sums_kernel(const T* x, const T* g, const T* mean, T* sum_g, T* sum_gc, Layout l) {
  const int64_t n = l.b * l.s;
  for (int64_t c = blockIdx.x; c < l.c; c += gridDim.x) {
    const double m = static_cast<double>(mean[c]);
    double a = 0, b = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t e = at(l, c, i);
      a += static_cast<double>(g[e]);
      b += static_cast<double>(g[e]) * (static_cast<double>(x[e]) - m);
    }
    const double total_g = block_reduce(a, SumOp{});
    const double total_gc = block_reduce(b, SumOp{});
    if (threadIdx.x == 0) {
      sum_g[c] = static_cast<T>(total_g);
      sum_gc[c] = static_cast<T>(total_gc);
    }
  }
}

template <typename T>
__global__ void affine_kernel(const T* x, const T* shift, const T* scale, const T* add, const T* u,
                              const T* u_scale, T* out, Layout l) {
  CTXPOOL_CUDA_LOOP(e, l.b * l.c * l.s) {
    const int64_t ch = (e / l.s) % l.c;
    T y = scale[ch] * (x[e] - shift[ch]) + add[ch];
    if (u != nullptr) y += u_scale[ch] * u[e];
    out[e] = y;
  }
}

unsigned channel_blocks(const Layout& l) {
  return static_cast<unsigned>(l.c < 1 ? 1 : (l.c > kMaxBlocks ? kMaxBlocks : l.c));
}

template <typename T>
const T* cdata(const Tensor& t) { return t.defined() ? data<T>(t) : nullptr; }

void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const Layout l = layout_of(x);
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    stats_kernel<scalar_t><<<channel_blocks(l), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(mean), data<scalar_t>(var), l);
  });
  check_launch("batch_norm stats_kernel");
}

void batch_norm_grad_sums(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& sum_g,
                          const Tensor& sum_gc) {
  const Layout l = layout_of(x);
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm backward", [&] {
    grad_sums_kernel<scalar_t><<<channel_blocks(l), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(g), data<scalar_t>(mean), data<scalar_t>(sum_g), data<scalar_t>(sum_gc), l);
  });
  check_launch("batch_norm grad_sums_kernel");
}

void channel_affine(const Tensor& x, const Tensor& shift, const Tensor& scale, const Tensor& add, const Tensor& u,
                    const Tensor& u_scale, const Tensor& out) {
  const Layout l = layout_of(x);
  if (out.numel() == 0) return;
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    affine_kernel<scalar_t><<<blocks_for(out.numel()), kThreads, 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(shift), data<scalar_t>(scale), data<scalar_t>(add), cdata<scalar_t>(u),
        cdata<scalar_t>(u_scale), data<scalar_t>(out), l);
  });
  check_launch("batch_norm affine_kernel");
}

}  // namespace

void add_batch_norm_kernels(Kernels& k) {
  k.batch_norm_stats = batch_norm_stats;
  k.batch_norm_grad_sums = batch_norm_grad_sums;
  k.channel_affine = channel_affine;
}

}  // namespace ctxpool::cuda
