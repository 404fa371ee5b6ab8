// Row kernels for neural-network functions on CUDA: softmax / log_softmax, layer_norm and its
// backward, the attention softmax and its backward, cross_entropy and its backward, with the
// semantics of ops/cpu/nn_kernels.cpp. One block per row (grid-stride over rows), of 32 to kThreads
// threads as the row is long (row_threads);
// every row sum goes through the fixed-order block_reduce and every column sum through a fixed loop,
// so a run gives the same bits every time (no floating atomics). Sums of floats accumulate in double
// where the CPU does so.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "cuda/check.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_nn_kernels at the end).
namespace {

// CUDA's accurate math, chosen by type (the CPU's fast float exp is a CPU vectorisation trick).
__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }

template <typename T>
__device__ inline T neg_inf() { return -std::numeric_limits<T>::infinity(); }

// One block per row, grid-stride over the rows beyond kMaxBlocks.
unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks); }

// Threads per row block: about four columns each, from one warp up to kThreads, a power of two (for
// block_reduce). A row of 128 columns (a small model's layer_norm) gets one warp instead of 256
// threads that would mostly idle through the reductions' barriers.
unsigned row_threads(int64_t cols) {
  unsigned threads = 32;
  while (threads < static_cast<unsigned>(kThreads) && 4 * static_cast<int64_t>(threads) < cols) threads *= 2;
  return threads;
}

// The loop over this thread's columns of a row: c = threadIdx.x, + blockDim.x, ... Each thread only
// ever rereads the columns it wrote itself, so the passes of a row need no barrier between them
// (block_reduce has its own).
#define CTXPOOL_ROW_LOOP(c, n) for (int64_t c = threadIdx.x; c < (n); c += blockDim.x)

// The maximum of row[0..n), -inf for an empty row; the same on every thread of the block.
template <typename T>
__device__ T row_max(const T* row, int64_t n) {
  T mx = neg_inf<T>();
  CTXPOOL_ROW_LOOP(c, n) mx = row[c] > mx ? row[c] : mx;
  return block_reduce(mx, MaxOp{});
}

// The CPU's exp_shifted: out[c] = exp(in[c] - max) for c < n (out may be in, or null to only sum);
// returns the sum in double (the same on every thread) and sets mx. A row of -inf uses max 0.
template <typename T>
__device__ double exp_shifted(const T* in, T* out, int64_t n, T& mx) {
  mx = row_max(in, n);
  if (mx == neg_inf<T>()) mx = 0;
  double sum = 0;
  CTXPOOL_ROW_LOOP(c, n) {
    const T e = exp_of(in[c] - mx);
    if (out) out[c] = e;
    sum += static_cast<double>(e);
  }
  return block_reduce(sum, SumOp{});
}

// x [rows, cols] -> out [rows, cols]: softmax, or log_softmax when take_log.
template <typename T>
__global__ void softmax_kernel(const T* x, T* out, int64_t rows, int64_t cols, bool take_log) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* in = x + r * cols;
    T* o = out + r * cols;
    T mx;
    const double total = exp_shifted(in, take_log ? nullptr : o, cols, mx);
    if (take_log) {
      const T lse = static_cast<T>(log(total)) + mx;
      CTXPOOL_ROW_LOOP(c, cols) o[c] = in[c] - lse;
    } else {
      const T inv = static_cast<T>(1.0 / total);
      CTXPOOL_ROW_LOOP(c, cols) o[c] *= inv;
    }
  }
}

void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  const int64_t cols = x.dim() ? x.sizes().back() : 1;
  const int64_t rows = cols ? x.numel() / cols : 0;
  if (rows == 0) return;
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    softmax_kernel<scalar_t><<<row_blocks(rows), row_threads(cols), 0, current_stream()>>>(
        data<scalar_t>(x), data<scalar_t>(out), rows, cols, log);
  });
  check_launch("softmax_kernel");
}

// scores [rows, s_len] -> softmax(scale * scores) per row, in place; with causal, row r sees the
// first r % t + 1 keys and the others become 0.
template <typename T>
__global__ void attention_softmax_kernel(T* scores, int64_t rows, int64_t s_len, int64_t t, T scale, bool causal) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* row = scores + r * s_len;
    const int64_t visible = causal ? r % t + 1 : s_len;
    const int64_t valid = visible < s_len ? visible : s_len;
    CTXPOOL_ROW_LOOP(c, valid) row[c] *= scale;
    T mx;
    const T inv = static_cast<T>(1.0 / exp_shifted(row, row, valid, mx));
    CTXPOOL_ROW_LOOP(c, valid) row[c] *= inv;
    for (int64_t c = valid + threadIdx.x; c < s_len; c += blockDim.x) row[c] = 0;
  }
}

void attention_softmax_rows(const Tensor& scores, int64_t t, double scale, bool causal) {
  const int64_t s_len = scores.sizes().back();
  const int64_t rows = s_len ? scores.numel() / s_len : 0;
  if (rows == 0) return;
  CTXPOOL_CHECK(!causal || t > 0, "scaled_dot_product_attention: the causal mask needs a positive query length, got ",
                t);
  set_device(scores.device().index);
  CTXPOOL_DISPATCH_FLOAT(scores.dtype(), "attention", [&] {
    attention_softmax_kernel<scalar_t><<<row_blocks(rows), row_threads(s_len), 0, current_stream()>>>(
        data<scalar_t>(scores), rows, s_len, t, static_cast<scalar_t>(scale), causal);
  });
  check_launch("attention_softmax_kernel");
}

// p, dp [rows, s_len] -> dp := scale * p * (dp - sum(p * dp)) per row. The products are rounded to T
// before the double sum, as on the CPU.
template <typename T>
__global__ void softmax_backward_kernel(const T* p, T* dp, int64_t rows, int64_t s_len, T scale) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* prow = p + r * s_len;
    T* drow = dp + r * s_len;
    double part = 0;
    CTXPOOL_ROW_LOOP(c, s_len) part += static_cast<double>(prow[c] * drow[c]);
    const T dot = static_cast<T>(block_reduce(part, SumOp{}));
    CTXPOOL_ROW_LOOP(c, s_len) drow[c] = scale * prow[c] * (drow[c] - dot);
  }
}

void softmax_backward_rows(const Tensor& p, const Tensor& dp, double scale) {
  const int64_t s_len = p.sizes().back();
  const int64_t rows = s_len ? p.numel() / s_len : 0;
  if (rows == 0) return;
  set_device(p.device().index);
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "attention backward", [&] {
    softmax_backward_kernel<scalar_t><<<row_blocks(rows), row_threads(s_len), 0, current_stream()>>>(
        data<scalar_t>(p), data<scalar_t>(dp), rows, s_len, static_cast<scalar_t>(scale));
  });
  check_launch("softmax_backward_kernel");
}

// x [rows, cols] -> y, mean [rows], rstd [rows]; weight / bias [cols] may be null. Two passes (mean,
// then squared deviations) in double, as on the CPU.
template <typename T>
__global__ void layer_norm_kernel(const T* x, const T* weight, const T* bias, double eps, T* y, T* mean, T* rstd,
                                  int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* in = x + r * cols;
    double s = 0;
    CTXPOOL_ROW_LOOP(c, cols) s += static_cast<double>(in[c]);
    const double mu = block_reduce(s, SumOp{}) / static_cast<double>(cols);
    double ss = 0;
    CTXPOOL_ROW_LOOP(c, cols) {
      const double d = static_cast<double>(in[c]) - mu;
      ss += d * d;
    }
    const double inv = 1.0 / sqrt(block_reduce(ss, SumOp{}) / static_cast<double>(cols) + eps);
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(inv);
    }
    T* out = y + r * cols;
    CTXPOOL_ROW_LOOP(c, cols) {
      T v = static_cast<T>((static_cast<double>(in[c]) - mu) * inv);
      if (weight) v *= weight[c];
      if (bias) v += bias[c];
      out[c] = v;
    }
  }
}

void layer_norm_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const Tensor& y,
                     const Tensor& mean, const Tensor& rstd) {
  const int64_t rows = mean.numel();
  const int64_t cols = rows ? x.numel() / rows : 0;
  if (rows == 0) return;  // (rows of 0 columns get mean and rstd NaN, as on the CPU)
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    using T = scalar_t;
    layer_norm_kernel<T><<<row_blocks(rows), row_threads(cols), 0, current_stream()>>>(
        data<T>(x), weight.defined() ? data<T>(weight) : nullptr, bias.defined() ? data<T>(bias) : nullptr, eps,
        data<T>(y), data<T>(mean), data<T>(rstd), rows, cols);
  });
  check_launch("layer_norm_kernel");
}

// The layer_norm backward's dx, one block per row:
// dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)), xhat = (x - mean) * rstd, gx = g * weight.
template <typename T>
__global__ void layer_norm_dx_kernel(const T* x, const T* weight, const T* mean, const T* rstd, const T* g, T* dx,
                                     int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    const T* gr = g + r * cols;
    const T m = mean[r], rs = rstd[r];
    double sum_gx = 0, sum_prod = 0;
    CTXPOOL_ROW_LOOP(c, cols) {
      const T xhat = (xr[c] - m) * rs;
      const T gx = weight ? gr[c] * weight[c] : gr[c];
      sum_gx += static_cast<double>(gx);
      sum_prod += static_cast<double>(gx * xhat);
    }
    const T a = static_cast<T>(block_reduce(sum_gx, SumOp{}) / static_cast<double>(cols));
    const T b = static_cast<T>(block_reduce(sum_prod, SumOp{}) / static_cast<double>(cols));
    T* dr = dx + r * cols;
    CTXPOOL_ROW_LOOP(c, cols) {
      const T xhat = (xr[c] - m) * rs;
      const T gx = weight ? gr[c] * weight[c] : gr[c];
      dr[c] = rs * (gx - a - xhat * b);
    }
  }
}

// The column sums dweight = sum_r g * xhat, dbias = sum_r g (either may be null), in two passes so
// that every multiprocessor has work however few the columns: first, thread (column c, chunk k) sums
// rows [k kRowChunk, (k + 1) kRowChunk) of column c in order into part[k cols + c] (a warp reads 32
// neighbouring columns of a row: coalesced); then one thread per column adds its chunks in order. The
// order is fixed by the shape, so the bits are the same every run (the CPU blocks by 64 rows too, but
// nvcc may contract a product and a sum into an FMA, so they need not be the CPU's bits).
constexpr int kRowChunk = 64;
constexpr int kColTile = 32;   // threads per block along the columns
constexpr int kChunkLanes = 8; // ... and along the chunks

template <typename T>
__global__ void layer_norm_params_chunks_kernel(const T* x, const T* mean, const T* rstd, const T* g, double* part_w,
                                                double* part_b, int64_t rows, int64_t cols, int64_t chunks) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  if (c >= cols) return;  // (no barrier in this kernel)
  for (int64_t k = static_cast<int64_t>(blockIdx.y) * kChunkLanes + threadIdx.y; k < chunks;
       k += static_cast<int64_t>(gridDim.y) * kChunkLanes) {
    const int64_t end = (k + 1) * kRowChunk < rows ? (k + 1) * kRowChunk : rows;
    double sw = 0, sb = 0;
    for (int64_t r = k * kRowChunk; r < end; ++r) {
      const T gv = g[r * cols + c];
      const T xhat = (x[r * cols + c] - mean[r]) * rstd[r];
      sw += static_cast<double>(gv * xhat);
      sb += static_cast<double>(gv);
    }
    if (part_w) part_w[k * cols + c] = sw;
    if (part_b) part_b[k * cols + c] = sb;
  }
}

template <typename T>
__global__ void layer_norm_params_total_kernel(const double* part_w, const double* part_b, T* dweight, T* dbias,
                                               int64_t cols, int64_t chunks) {
  CTXPOOL_CUDA_LOOP(c, cols) {
    double tw = 0, tb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      if (part_w) tw += part_w[k * cols + c];
      if (part_b) tb += part_b[k * cols + c];
    }
    if (dweight) dweight[c] = static_cast<T>(tw);
    if (dbias) dbias[c] = static_cast<T>(tb);
  }
}

void layer_norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                              const Tensor& g, const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const int64_t rows = mean.numel();
  const int64_t cols = rows ? x.numel() / rows : 0;
  const bool need_params = dweight.defined() || dbias.defined();
  if (rows == 0) {
    // Sums over no rows are 0 (the parameters' size is known even when x is empty).
    for (const Tensor* p : {&dweight, &dbias}) {
      if (!p->defined() || p->numel() == 0) continue;
      CTXPOOL_CHECK(p->is_contiguous(), "layer_norm backward: a non-contiguous parameter gradient on ", p->device());
      set_device(p->device().index);
      check(cudaMemsetAsync(p->raw_data(), 0, p->nbytes(), current_stream()), "cudaMemsetAsync");
    }
    return;
  }
  if (cols == 0) return;  // nothing to write
  set_device(x.device().index);
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "layer_norm backward", [&] {
    using T = scalar_t;
    const T* wp = weight.defined() ? data<T>(weight) : nullptr;
    if (dx.defined()) {
      layer_norm_dx_kernel<T><<<row_blocks(rows), row_threads(cols), 0, current_stream()>>>(
          data<T>(x), wp, data<T>(mean), data<T>(rstd), data<T>(g), data<T>(dx), rows, cols);
      check_launch("layer_norm_dx_kernel");
    }
    if (need_params) {
      const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
      const TensorOptions scratch = TensorOptions(kFloat64).device(x.device());  // (freed in stream order)
      const Tensor part_w = dweight.defined() ? empty({chunks, cols}, scratch) : Tensor();
      const Tensor part_b = dbias.defined() ? empty({chunks, cols}, scratch) : Tensor();
      double* pw = part_w.defined() ? data<double>(part_w) : nullptr;
      double* pb = part_b.defined() ? data<double>(part_b) : nullptr;
      const int64_t chunk_blocks = (chunks + kChunkLanes - 1) / kChunkLanes;
      const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                      static_cast<unsigned>(chunk_blocks < 65535 ? chunk_blocks : 65535));  // (grid-stride in y)
      layer_norm_params_chunks_kernel<T><<<grid, dim3(kColTile, kChunkLanes), 0, current_stream()>>>(
          data<T>(x), data<T>(mean), data<T>(rstd), data<T>(g), pw, pb, rows, cols, chunks);
      check_launch("layer_norm_params_chunks_kernel");
      layer_norm_params_total_kernel<T><<<blocks_for(cols), kThreads, 0, current_stream()>>>(
          pw, pb, dweight.defined() ? data<T>(dweight) : nullptr, dbias.defined() ? data<T>(dbias) : nullptr, cols,
          chunks);
      check_launch("layer_norm_params_total_kernel");
    }
  });
}

// The targets and row scales are read by the kernels: they must live where the logits do.
void check_on_device(const char* op, const Tensor& logits, const Tensor& t, const char* what) {
  CTXPOOL_CHECK(t.device() == logits.device(), op, ": ", what, " of shape ", t.sizes(), " is on ", t.device(),
                " but the logits are on ", logits.device(), " (the CUDA kernel reads it on the device)");
}

// logits [n, cols], target [n] -> loss [n]: logsumexp(row) - row[target], 0 where target ==
// ignore_index. The target is read by every thread of the block, so the branches are uniform.
template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* target, int64_t ignore_index, T* loss,
                                     int64_t n, int64_t cols) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const int64_t t = target[r];
    if (t == ignore_index || t < 0 || t >= cols) {
      // An out-of-range target is refused by the op; a kernel cannot throw, so it gives NaN.
      if (threadIdx.x == 0) loss[r] = t == ignore_index ? T(0) : std::numeric_limits<T>::quiet_NaN();
      continue;
    }
    const T* row = logits + r * cols;
    // No guard for an all -inf row: the loss is NaN here (-inf - -inf), as on the CPU (where the
    // guarded max 0 gives 0 * log 0 -> -inf + 0 - -inf).
    const T mx = row_max(row, cols);
    double total = 0;
    CTXPOOL_ROW_LOOP(c, cols) total += exp(static_cast<double>(row[c] - mx));
    total = block_reduce(total, SumOp{});
    if (threadIdx.x == 0) loss[r] = static_cast<T>(log(total) + mx - row[t]);
  }
}

void cross_entropy_rows(const Tensor& logits, const Tensor& target, int64_t ignore_index, const Tensor& loss) {
  const int64_t n = target.numel();
  const int64_t cols = n ? logits.numel() / n : 0;
  if (n == 0) return;
  check_on_device("cross_entropy", logits, target, "target");
  set_device(logits.device().index);
  CTXPOOL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    cross_entropy_kernel<scalar_t><<<row_blocks(n), row_threads(cols), 0, current_stream()>>>(
        data<scalar_t>(logits), data<int64_t>(target), ignore_index, data<scalar_t>(loss), n, cols);
  });
  check_launch("cross_entropy_kernel");
}

// dlogits[r] = softmax(logits[r]) * row_scale[r], minus row_scale[r] at the target when the row
// counts. The target column is written by the thread that owns it, after its own scaling.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* target, const T* row_scale, T* dlogits,
                                              int64_t n, int64_t cols) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    T* d = dlogits + r * cols;
    const T s = row_scale[r];
    const int64_t t = target[r];
    T mx;
    const T scale = static_cast<T>(static_cast<double>(s) / exp_shifted(logits + r * cols, d, cols, mx));
    CTXPOOL_ROW_LOOP(c, cols) {
      T v = d[c] * scale;
      if (c == t && s != T(0)) v -= s;
      d[c] = v;
    }
  }
}

void cross_entropy_backward_rows(const Tensor& logits, const Tensor& target, const Tensor& row_scale,
                                 const Tensor& dlogits) {
  const int64_t n = target.numel();
  const int64_t cols = n ? logits.numel() / n : 0;
  if (cols == 0) return;  // no classes (or no rows): nothing to differentiate
  check_on_device("cross_entropy backward", logits, target, "target");
  check_on_device("cross_entropy backward", logits, row_scale, "row_scale");
  set_device(logits.device().index);
  CTXPOOL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy backward", [&] {
    using T = scalar_t;
    cross_entropy_backward_kernel<T><<<row_blocks(n), row_threads(cols), 0, current_stream()>>>(
        data<T>(logits), data<int64_t>(target), data<T>(row_scale), data<T>(dlogits), n, cols);
  });
  check_launch("cross_entropy_backward_kernel");
}

#undef CTXPOOL_ROW_LOOP

}  // namespace

void add_nn_kernels(Kernels& k) {
  k.softmax_rows = softmax_rows;
  k.layer_norm_rows = layer_norm_rows;
  k.layer_norm_backward_rows = layer_norm_backward_rows;
  k.attention_softmax_rows = attention_softmax_rows;
  k.softmax_backward_rows = softmax_backward_rows;
  k.cross_entropy_rows = cross_entropy_rows;
  k.cross_entropy_backward_rows = cross_entropy_backward_rows;
}

}  // namespace ctxpool::cuda
