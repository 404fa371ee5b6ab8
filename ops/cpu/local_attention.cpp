// Local (sliding-window) causal attention kernels. Query i sees the W keys j = i - W + 1 + c,
// c in [0, W); slots with j < 0 (before the sequence start) hold probability 0. Nothing is ever
// T x T: scores and probabilities live in [BH, T, W].
//
// Every output row is written by exactly one task, in a fixed order, so results do not depend on
// the thread count: the forward and dq go over query rows, dk and dv over key rows (gathering the
// queries i in [j, j + W - 1] that see key j).
#include <algorithm>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/fast_math.h"
#include "ops/kernels.h"

namespace ctxpool::cpu {

// Reached through the kernel table only (add_local_attention_kernels at the end).
namespace {

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T acc = 0;
  for (int64_t d = 0; d < n; ++d) acc += a[d] * b[d];
  return acc;
}

// out[0..n) += alpha * x[0..n)
template <typename T>
void axpy(T alpha, const T* x, T* out, int64_t n) {
  for (int64_t d = 0; d < n; ++d) out[d] += alpha * x[d];
}

// Rows per task: about 16K multiply-adds each, so small problems run inline.
int64_t grain_for(int64_t work_per_row) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(work_per_row, 1)); }

// q [BH, T, D], k [BH, T, D], v [BH, T, Dv] -> probs [BH, T, W], out [BH, T, Dv]
void local_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t window, double scale,
                             const Tensor& probs, const Tensor& out) {
  const int64_t bh = q.sizes()[0], t = q.sizes()[1], d = q.sizes()[2], dv = v.sizes()[2];
  const int64_t w = std::min(window, t);  // a window longer than the sequence sees all of it
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "local_attention", [&] {
    using T = scalar_t;
    const T* qp = q.data_ptr<T>();
    const T* kp = k.data_ptr<T>();
    const T* vp = v.data_ptr<T>();
    T* pp = probs.data_ptr<T>();
    T* op = out.data_ptr<T>();
    const T sc = static_cast<T>(scale);
    parallel_for(0, bh * t, grain_for(w * (d + dv)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / t, i = r % t;
        const int64_t first = std::max<int64_t>(0, w - 1 - i);  // first slot with j >= 0
        const T* qi = qp + r * d;
        T* prow = pp + r * w;
        // Scores, then softmax over the valid slots with the row max subtracted.
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t c = first; c < w; ++c) {
          const int64_t j = i - w + 1 + c;
          prow[c] = sc * dot(qi, kp + (b * t + j) * d, d);
          mx = std::max(mx, prow[c]);
        }
        for (int64_t c = first; c < w; ++c) prow[c] = exp_of(prow[c] - mx);
        const T inv = static_cast<T>(1.0 / sum_of(prow + first, w - first));
        for (int64_t c = 0; c < first; ++c) prow[c] = 0;
        T* orow = op + r * dv;
        std::fill(orow, orow + dv, T(0));
        for (int64_t c = first; c < w; ++c) {
          prow[c] *= inv;
          axpy(prow[c], vp + (b * t + i - w + 1 + c) * dv, orow, dv);
        }
      }
    });
  });
}

// q, k [BH, T, D], v [BH, T, Dv], probs [BH, T, W], g [BH, T, Dv]
//   -> dq [BH, T, D], dk [BH, T, D], dv [BH, T, Dv] (each optional)
// dP[i,c] = g_i . v_j;  dS[i,c] = scale * P[i,c] (dP[i,c] - sum_c' P[i,c'] dP[i,c']);
// dq_i = sum_c dS[i,c] k_j;  dk_j = sum_i dS[i,c] q_i;  dv_j = sum_i P[i,c] g_i  (c = j - i + W - 1).
void local_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                              const Tensor& g, int64_t window, double scale, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv) {
  const int64_t bh = q.sizes()[0], t = q.sizes()[1], d = q.sizes()[2], d_v = v.sizes()[2];
  const int64_t w = std::min(window, t);
  const bool need_ds = dq.defined() || dk.defined();
  CTXPOOL_DISPATCH_FLOAT(q.dtype(), "local_attention backward", [&] {
    using T = scalar_t;
    const T* qp = q.data_ptr<T>();
    const T* kp = k.data_ptr<T>();
    const T* vp = v.data_ptr<T>();
    const T* pp = probs.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    const T sc = static_cast<T>(scale);
    // Pass 1, per query row: dS (kept, O(T W), because dk_j needs rows i > j) and dq.
    std::vector<T> ds(need_ds ? bh * t * w : 0);
    if (need_ds) {
      T* dqp = dq.defined() ? dq.data_ptr<T>() : nullptr;
      parallel_for(0, bh * t, grain_for(w * (d + d_v)), [&](int64_t r0, int64_t r1) {
        std::vector<T> prod(w);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t b = r / t, i = r % t;
          const int64_t first = std::max<int64_t>(0, w - 1 - i);
          const T* prow = pp + r * w;
          T* dsrow = ds.data() + r * w;
          std::fill(prod.begin(), prod.end(), T(0));
          for (int64_t c = first; c < w; ++c) {
            dsrow[c] = dot(gp + r * d_v, vp + (b * t + i - w + 1 + c) * d_v, d_v);  // dP
            prod[c] = prow[c] * dsrow[c];
          }
          const T row_dot = static_cast<T>(sum_of(prod.data(), w));
          for (int64_t c = 0; c < first; ++c) dsrow[c] = 0;
          for (int64_t c = first; c < w; ++c) dsrow[c] = sc * prow[c] * (dsrow[c] - row_dot);
          if (!dqp) continue;
          T* dqrow = dqp + r * d;
          std::fill(dqrow, dqrow + d, T(0));
          for (int64_t c = first; c < w; ++c) axpy(dsrow[c], kp + (b * t + i - w + 1 + c) * d, dqrow, d);
        }
      });
    }
    // Pass 2, per key row j: gather over the queries i = j .. j + W - 1 that see it.
    if (!dk.defined() && !dv.defined()) return;
    T* dkp = dk.defined() ? dk.data_ptr<T>() : nullptr;
    T* dvp = dv.defined() ? dv.data_ptr<T>() : nullptr;
    parallel_for(0, bh * t, grain_for(w * (d + d_v)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / t, j = r % t;
        const int64_t last = std::min(t - 1, j + w - 1);
        T* dkrow = dkp ? dkp + r * d : nullptr;
        T* dvrow = dvp ? dvp + r * d_v : nullptr;
        if (dkrow) std::fill(dkrow, dkrow + d, T(0));
        if (dvrow) std::fill(dvrow, dvrow + d_v, T(0));
        for (int64_t i = j; i <= last; ++i) {
          const int64_t qrow = b * t + i, c = j - i + w - 1;
          if (dkrow) axpy(ds[qrow * w + c], qp + qrow * d, dkrow, d);
          if (dvrow) axpy(pp[qrow * w + c], gp + qrow * d_v, dvrow, d_v);
        }
      }
    });
  });
}

}  // namespace

void add_local_attention_kernels(Kernels& k) {
  k.local_attention_forward = local_attention_forward;
  k.local_attention_backward = local_attention_backward;
}

}  // namespace ctxpool::cpu
