// Row kernels for neural-network functions: softmax / log_softmax, layer_norm, cross_entropy.
// Each works on contiguous [rows, cols] data, one row per task, so results do not depend on threads.
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/fast_math.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_nn_kernels at the end).
namespace {

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

// The shared core of every softmax here: out[c] = exp(in[c] - max) for c < n (out may be in);
// returns the sum and sets *max_out. A row of -inf uses max 0 (no inf - inf).
template <typename T>
double exp_shifted(const T* in, T* out, int64_t n, T* max_out) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < n; ++c) mx = std::max(mx, in[c]);
  if (mx == -std::numeric_limits<T>::infinity()) mx = 0;
  for (int64_t c = 0; c < n; ++c) out[c] = exp_of(in[c] - mx);
  *max_out = mx;
  return sum_of(out, n);
}

// x [rows, cols] -> out [rows, cols]
void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  const int64_t cols = x.dim() ? x.sizes().back() : 1;
  const int64_t rows = cols ? x.numel() / cols : 0;
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    parallel_for(0, rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* in = xp + r * cols;
        T* o = op + r * cols;
        T mx;
        const double total = exp_shifted(in, o, cols, &mx);
        if (log) {
          const T lse = static_cast<T>(std::log(total)) + mx;
          for (int64_t c = 0; c < cols; ++c) o[c] = in[c] - lse;
        } else {
          const T inv = static_cast<T>(1.0 / total);
          for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
        }
      }
    });
  });
}

// scores [rows, S] -> probabilities, in place
void attention_softmax_rows(const Tensor& scores, int64_t t, double scale, bool causal) {
  const int64_t s_len = scores.sizes().back();
  const int64_t rows = s_len ? scores.numel() / s_len : 0;
  CTXPOOL_DISPATCH_FLOAT(scores.dtype(), "attention", [&] {
    using T = scalar_t;
    T* base = scores.data_ptr<T>();
    const T sc = static_cast<T>(scale);
    parallel_for(0, rows, row_grain(s_len), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* row = base + r * s_len;
        const int64_t valid = causal ? std::min(s_len, r % t + 1) : s_len;
        for (int64_t c = 0; c < valid; ++c) row[c] *= sc;
        T mx;
        const T inv = static_cast<T>(1.0 / exp_shifted(row, row, valid, &mx));
        for (int64_t c = 0; c < valid; ++c) row[c] *= inv;
        for (int64_t c = valid; c < s_len; ++c) row[c] = 0;
      }
    });
  });
}

// p, dp [rows, S] -> dp := scale * p * (dp - <p, dp>)
void softmax_backward_rows(const Tensor& p, const Tensor& dp, double scale) {
  const int64_t s_len = p.sizes().back();
  const int64_t rows = s_len ? p.numel() / s_len : 0;
  CTXPOOL_DISPATCH_FLOAT(p.dtype(), "attention backward", [&] {
    using T = scalar_t;
    const T* pp = p.data_ptr<T>();
    T* dpp = dp.data_ptr<T>();
    const T sc = static_cast<T>(scale);
    parallel_for(0, rows, row_grain(s_len), [&](int64_t r0, int64_t r1) {
      std::vector<T> prod(s_len);
      for (int64_t r = r0; r < r1; ++r) {
        const T* prow = pp + r * s_len;
        T* drow = dpp + r * s_len;
        for (int64_t c = 0; c < s_len; ++c) prod[c] = prow[c] * drow[c];
        const T dot = static_cast<T>(sum_of(prod.data(), s_len));
        for (int64_t c = 0; c < s_len; ++c) drow[c] = sc * prow[c] * (drow[c] - dot);
      }
    });
  });
}

// x [rows, cols] -> y [rows, cols], mean [rows], rstd [rows]
void layer_norm_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                     const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  const int64_t rows = mean.numel();
  const int64_t cols = rows ? x.numel() / rows : 0;
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "layer_norm", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    const T* wp = weight.defined() ? weight.data_ptr<T>() : nullptr;
    const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
    T* yp = y.data_ptr<T>();
    T* mp = mean.data_ptr<T>();
    T* rp = rstd.data_ptr<T>();
    parallel_for(0, rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* in = xp + r * cols;
        const double mu = sum_of(in, cols) / cols;
        double ss = 0;  // two passes: exact even when the mean is large against the spread
        for (int64_t c = 0; c < cols; ++c) ss += (in[c] - mu) * (in[c] - mu);
        const double inv = 1.0 / std::sqrt(ss / cols + eps);
        mp[r] = static_cast<T>(mu);
        rp[r] = static_cast<T>(inv);
        T* out = yp + r * cols;
        for (int64_t c = 0; c < cols; ++c) {
          T v = static_cast<T>((in[c] - mu) * inv);
          if (wp) v *= wp[c];
          if (bp) v += bp[c];
          out[c] = v;
        }
      }
    });
  });
}

void layer_norm_backward_rows(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                              const Tensor& g, const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const int64_t rows = mean.numel();
  // With 0 rows, x.numel() / rows says nothing: the parameter gradients still have their columns, and
  // they must be written (zeros), not left as the allocator gave them.
  const int64_t cols = dweight.defined() ? dweight.numel()
                       : dbias.defined() ? dbias.numel()
                                         : (rows ? x.numel() / rows : 0);
  constexpr int64_t kBlock = 64;  // rows per partial column sum
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  const bool need_params = dweight.defined() || dbias.defined();
  CTXPOOL_DISPATCH_FLOAT(x.dtype(), "layer_norm backward", [&] {
    using T = scalar_t;
    const T* xp = x.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    const T* wp = weight.defined() ? weight.data_ptr<T>() : nullptr;
    const T* mp = mean.data_ptr<T>();
    const T* rp = rstd.data_ptr<T>();
    T* dxp = dx.defined() ? dx.data_ptr<T>() : nullptr;
    std::vector<double> part_w(need_params ? blocks * cols : 0), part_b(need_params ? blocks * cols : 0);
    parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> xhat(cols), gx(cols), prod(cols);
      for (int64_t blk = b0; blk < b1; ++blk) {
        double* pw = need_params ? &part_w[blk * cols] : nullptr;
        double* pb = need_params ? &part_b[blk * cols] : nullptr;
        for (int64_t r = blk * kBlock; r < std::min(rows, (blk + 1) * kBlock); ++r) {
          const T* xr = xp + r * cols;
          const T* gr = gp + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            xhat[c] = (xr[c] - mp[r]) * rp[r];
            gx[c] = wp ? gr[c] * wp[c] : gr[c];
          }
          if (pw) {
            for (int64_t c = 0; c < cols; ++c) {
              pw[c] += static_cast<double>(gr[c] * xhat[c]);
              pb[c] += static_cast<double>(gr[c]);
            }
          }
          if (!dxp) continue;
          // dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat))
          for (int64_t c = 0; c < cols; ++c) prod[c] = gx[c] * xhat[c];
          const T a = static_cast<T>(sum_of(gx.data(), cols) / cols);
          const T b = static_cast<T>(sum_of(prod.data(), cols) / cols);
          T* dr = dxp + r * cols;
          for (int64_t c = 0; c < cols; ++c) dr[c] = rp[r] * (gx[c] - a - xhat[c] * b);
        }
      }
    });
    if (need_params) {
      T* dwp = dweight.defined() ? dweight.data_ptr<T>() : nullptr;
      T* dbp = dbias.defined() ? dbias.data_ptr<T>() : nullptr;
      for (int64_t c = 0; c < cols; ++c) {
        double sw = 0, sb = 0;
        for (int64_t blk = 0; blk < blocks; ++blk) {
          sw += part_w[blk * cols + c];
          sb += part_b[blk * cols + c];
        }
        if (dwp) dwp[c] = static_cast<T>(sw);
        if (dbp) dbp[c] = static_cast<T>(sb);
      }
    }
  });
}

void cross_entropy_backward_rows(const Tensor& logits, const Tensor& target, const Tensor& row_scale,
                                 const Tensor& dlogits) {
  const int64_t n = target.numel();
  const int64_t cols = n ? logits.numel() / n : 0;
  if (cols == 0) return;  // no classes: nothing to differentiate (every target was ignored)
  const int64_t* tp = target.data_ptr<int64_t>();
  CTXPOOL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy backward", [&] {
    using T = scalar_t;
    const T* xp = logits.data_ptr<T>();
    const T* sp = row_scale.data_ptr<T>();
    T* dp = dlogits.data_ptr<T>();
    parallel_for(0, n, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* d = dp + r * cols;
        T mx;
        const T scale = static_cast<T>(sp[r] / exp_shifted(xp + r * cols, d, cols, &mx));
        for (int64_t c = 0; c < cols; ++c) d[c] *= scale;
        if (sp[r] != T(0)) d[tp[r]] -= sp[r];
      }
    });
  });
}

// logits [N, C], target [N] -> loss [N]: logsumexp(row) - row[target]
void cross_entropy_rows(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                        const Tensor& loss) {
  const int64_t n = target.numel();
  const int64_t cols = n ? logits.numel() / n : 0;
  const int64_t* tp = target.data_ptr<int64_t>();
  CTXPOOL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    using T = scalar_t;
    const T* xp = logits.data_ptr<T>();
    T* lp = loss.data_ptr<T>();
    parallel_for(0, n, row_grain(cols), [&](int64_t r0, int64_t r1) {
      std::vector<T> scratch(static_cast<size_t>(cols));  // the shifted exps, as softmax's (vectorised)
      for (int64_t r = r0; r < r1; ++r) {
        if (tp[r] == ignore_index) {
          lp[r] = 0;
          continue;
        }
        const T* row = xp + r * cols;
        T mx;
        const double total = exp_shifted(row, scratch.data(), cols, &mx);
        lp[r] = static_cast<T>(std::log(total) + mx - row[tp[r]]);
      }
    });
  });
}

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

}  // namespace ctxpool::cpu
