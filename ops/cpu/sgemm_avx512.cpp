// The AVX-512 float32 GEMM (sgemm_avx512.h says why it exists).
//
//   for each block of kNc columns of B and C            (the packed B block stays in L2 / L3)
//     for each block of kKc values of k                 (C accumulates one k-block after another)
//       pack B[k-block, column block] into 32-wide panels, k-major: [kc][32]
//       for each block of kMc rows of A and C
//         pack A[row block, k-block] into 12-tall panels, k-major: [kc][12]
//         for each 32-wide B panel, for each 12-tall A panel: one 12 x 32 tile of C
//
// A tile keeps its 12 x 32 sums in 24 zmm registers for the whole k-block: each step loads 32 values
// of B (two registers), broadcasts 12 values of A and does 24 fused multiply-adds. Panels are padded
// with zeros to whole tiles; the tile's loads of B and stores to C are masked at the edges of C.
#include "ops/cpu/sgemm_avx512.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/cpu/scratch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CTXPOOL_SGEMM_AVX512 1
#include <immintrin.h>
#endif

namespace ctxpool::cpu {

#ifdef CTXPOOL_SGEMM_AVX512

namespace {

constexpr int64_t kMr = 12, kNr = 32;  // the tile: 12 rows x 32 columns (two 16-float registers)
constexpr int64_t kKc = 256;           // k per block: a 32-wide B panel (32 KiB) stays in L1
constexpr int64_t kMc = 144;           // rows per packed A block (144 KiB, in L2)
constexpr int64_t kNc = 2048;          // columns per packed B block (2 MiB)

// out[c][0..15] = rows[0..15][c] for c < 16: a 16 x 16 transpose in registers. Each output row c
// gathers column c from four groups of four input rows: unpacking pairs of floats, then pairs of
// pairs, leaves column 4L + q of rows 4g..4g+3 in 128-bit lane L of vector 4g + q; two rounds of lane
// shuffles then put the four groups' lane L side by side.
// GCC 12's own unpack intrinsics start from an "undefined" register and warn about it here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void transpose_16x16(__m512 r[16], float* out, int64_t out_stride) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);  // per lane: r[i][4L], r[i+1][4L], r[i][4L+1], r[i+1][4L+1]
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 2]);
    const __m512d c = _mm512_castps_pd(t[i + 1]), d = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));      // lane L: column 4L of rows i..i+3
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));  // column 4L + 1
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));  // column 4L + 2
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));  // column 4L + 3
  }
  for (int q = 0; q < 4; ++q) {
    const __m512 w0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44);       // lanes 0, 1 of groups 0 and 1
    const __m512 w1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);       // lanes 2, 3 of groups 0 and 1
    const __m512 w2 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);  // lanes 0, 1 of groups 2 and 3
    const __m512 w3 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);  // lanes 2, 3 of groups 2 and 3
    _mm512_store_ps(out + (0 + q) * out_stride, _mm512_shuffle_f32x4(w0, w2, 0x88));   // column q
    _mm512_store_ps(out + (4 + q) * out_stride, _mm512_shuffle_f32x4(w0, w2, 0xDD));   // column 4 + q
    _mm512_store_ps(out + (8 + q) * out_stride, _mm512_shuffle_f32x4(w1, w3, 0x88));   // column 8 + q
    _mm512_store_ps(out + (12 + q) * out_stride, _mm512_shuffle_f32x4(w1, w3, 0xDD));  // column 12 + q
  }
}
#pragma GCC diagnostic pop

// A 32-wide panel of a transposed B: panel[k][j] = rows[j * ldb + k] for j < width, 0 for width <= j
// < 32, k < kc. Whole halves of 16 rows go through register transposes, 16 k at a time; the last
// kc % 16 values, and a half with fewer rows, are gathered (masked to the rows that exist).
__attribute__((target("avx512f"))) void pack_b_rows(const float* rows, int64_t ldb, int64_t kc, int64_t width,
                                                    float* panel) {
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int>(ldb)));
  const __m512 none = _mm512_setzero_ps();
  for (int half = 0; half < 2; ++half) {
    const int64_t valid = std::clamp<int64_t>(width - 16 * half, 0, 16);
    float* out = panel + 16 * half;
    if (valid == 0) {
      for (int64_t k = 0; k < kc; ++k) _mm512_store_ps(out + k * kNr, none);
      continue;
    }
    const float* first_row = rows + 16 * half * ldb;
    int64_t k = 0;
    if (valid == 16) {
      for (; k + 16 <= kc; k += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(first_row + i * ldb + k);
        transpose_16x16(r, out + k * kNr, kNr);
      }
    }
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
    for (; k < kc; ++k) _mm512_store_ps(out + k * kNr, _mm512_mask_i32gather_ps(none, mask, offsets, first_row + k, 4));
  }
}

// panel[k][j] = rows[j * ld + k] for j < count, 0 for count <= j < width, k < kc: `count` rows of a
// matrix laid across a k-major panel of `width` lanes, one row at a time.
void rows_to_panel(const float* rows, int64_t ld, int64_t count, int64_t width, int64_t kc, float* panel) {
  for (int64_t j = 0; j < width; ++j) {
    if (j >= count) {
      for (int64_t k = 0; k < kc; ++k) panel[k * width + j] = 0.0f;
      continue;
    }
    const float* src = rows + j * ld;
    for (int64_t k = 0; k < kc; ++k) panel[k * width + j] = src[k];
  }
}

// op(B)[k0 + k, j0 + j] for k < kc, j < nc -> panels [ceil(nc / 32)][kc][32], zero beyond nc.
void pack_b(bool trans, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  for (int64_t jp = 0; jp < nc; jp += kNr) {
    const int64_t width = std::min(kNr, nc - jp);
    float* panel = out + jp * kc;
    if (!trans) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (k0 + k) * ldb + j0 + jp;
        float* dst = panel + k * kNr;
        std::memcpy(dst, src, width * sizeof(float));
        std::fill(dst + width, dst + kNr, 0.0f);
      }
    } else if (kNr * ldb <= INT32_MAX) {  // B stored [N, K]: 32 of its rows become one panel
      pack_b_rows(B + (j0 + jp) * ldb + k0, ldb, kc, width, panel);
    } else {  // rows too far apart for 32-bit gather offsets
      rows_to_panel(B + (j0 + jp) * ldb + k0, ldb, width, kNr, kc, panel);
    }
  }
}

// op(A)[i0 + i, k0 + k] for i < mc, k < kc -> panels [ceil(mc / 12)][kc][12], zero beyond mc.
void pack_a(bool trans, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t ip = 0; ip < mc; ip += kMr) {
    const int64_t height = std::min(kMr, mc - ip);
    float* panel = out + ip * kc;
    if (trans) {  // A is stored [K, M]: the 12 values of one k are adjacent
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (k0 + k) * lda + i0 + ip;
        float* dst = panel + k * kMr;
        std::memcpy(dst, src, height * sizeof(float));
        std::fill(dst + height, dst + kMr, 0.0f);
      }
    } else {
      rows_to_panel(A + (i0 + ip) * lda + k0, lda, height, kMr, kc, panel);
    }
  }
}

// C[rows, cols] (= or +=) a_panel [kc][12] @ b [kc][32 columns, row k at b + k * ldb], rows <= 12,
// cols <= 32: b is a packed panel (ldb 32) or B itself; loads and stores are masked past column `cols`.
__attribute__((target("avx512f"))) void tile(int64_t kc, const float* a, const float* b, int64_t ldb, float* c,
                                             int64_t ldc, int64_t rows, int64_t cols, bool accumulate) {
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
  // Where columns 16-31 start; with none of them (m1 = 0) the masked accesses point at column 0, so
  // that no address past the matrix is formed.
  const int64_t upper = cols > 16 ? 16 : 0;
  __m512 acc[kMr][2];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bk), b1 = _mm512_maskz_loadu_ps(m1, bk + upper);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[k * kMr + i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i) {
    if (i >= rows) break;
    float* row = c + i * ldc;
    __m512 lo = acc[i][0], hi = acc[i][1];
    if (accumulate) {
      lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, row));
      hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, row + upper));
    }
    _mm512_mask_storeu_ps(row, m0, lo);
    _mm512_mask_storeu_ps(row + upper, m1, hi);
  }
}

// The whole product on the calling thread. B is packed when it is transposed (its columns are
// strided) or when more than one block of A's rows will reuse the packed panels; otherwise the tiles
// read B's rows in place, which saves a pass over B when M is small (a convolution's C_out rows).
void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  const bool pack_b_panels = tb || M > kMc;
  float* packed_b = pack_b_panels ? thread_scratch<float>(0, kKc * std::min(kNc, (N + kNr - 1) / kNr * kNr)) : nullptr;
  float* packed_a = thread_scratch<float>(1, kKc * std::min(kMc, (M + kMr - 1) / kMr * kMr));
  for (int64_t jc = 0; jc < N; jc += kNc) {
    const int64_t nc = std::min(kNc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKc) {
      const int64_t kc = std::min(kKc, K - pc);
      if (pack_b_panels) pack_b(tb, B, ldb, pc, kc, jc, nc, packed_b);
      for (int64_t ic = 0; ic < M; ic += kMc) {
        const int64_t mc = std::min(kMc, M - ic);
        pack_a(ta, A, lda, ic, mc, pc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          const float* b = pack_b_panels ? packed_b + jr * kc : B + pc * ldb + jc + jr;
          const int64_t b_stride = pack_b_panels ? kNr : ldb;
          for (int64_t ir = 0; ir < mc; ir += kMr)
            tile(kc, packed_a + ir * kc, b, b_stride, C + (ic + ir) * ldc + jc + jr, ldc, std::min(kMr, mc - ir),
                 std::min(kNr, nc - jr), accumulate || pc > 0);
        }
      }
    }
  }
}

// ---- Skinny transposed products: C [M, N] = A [M, K] @ B [N, K]^T with few columns (N <= kDotMaxN) ----
// A convolution's weight gradient with few input channels has this shape (a one-channel first layer:
// N = 9 taps, K = an image's output positions). Its tiles would be mostly padding and B
// would go through transposing packs, while the rows of A and B are already contiguous in k: so each
// element of C is a dot product, taken 16 k at a time for a block of 4 rows of A and NR rows of B
// (4 * NR sums in registers), over k-blocks of kDotKc so that the rows stay in cache. Every C[i, j]
// sums its k-blocks in order, each with the same lanes and reduction: the same bits for any thread count.

constexpr int64_t kDotMaxN = 16;   // at most this many columns of C
constexpr int64_t kDotMinK = 128;  // and k at least this long (shorter dots would be mostly lane sums)
constexpr int64_t kDotMr = 4;      // rows of A per block
constexpr int64_t kDotKc = 2048;   // k per block: 4 + 6 rows of 8 KiB each

// The sum of v's 16 lanes, in halves of halves (GCC 12's shuffles warn as its unpacks do above).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) inline float sum_lanes(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));  // 256-bit halves swapped
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));  // 128-bit lanes swapped in pairs
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));        // 64-bit pairs swapped in each lane
  v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));        // neighbours swapped
  return _mm512_cvtss_f32(v);
}
#pragma GCC diagnostic pop

// C[i, j] (= or +=) sum over k < kc of a[i * lda + k] * b[j * ldb + k] for i < rows (<= 4), j < NR.
template <int NR>
__attribute__((target("avx512f"))) void dot_block(int64_t kc, const float* a, int64_t lda, int64_t rows,
                                                  const float* b, int64_t ldb, float* c, int64_t ldc,
                                                  bool accumulate) {
  const float* a_rows[kDotMr];  // rows past the last are read again and their sums dropped
  for (int64_t i = 0; i < kDotMr; ++i) a_rows[i] = a + std::min(i, rows - 1) * lda;
  __m512 acc[kDotMr][NR];
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k += 16) {
    const __mmask16 m = kc - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (kc - k)) - 1);
    __m512 bj[NR];
#pragma GCC unroll 6
    for (int j = 0; j < NR; ++j) bj[j] = _mm512_maskz_loadu_ps(m, b + j * ldb + k);
#pragma GCC unroll 4
    for (int i = 0; i < kDotMr; ++i) {
      const __m512 ai = _mm512_maskz_loadu_ps(m, a_rows[i] + k);
#pragma GCC unroll 6
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(ai, bj[j], acc[i][j]);
    }
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int j = 0; j < NR; ++j) {
      const float sum = sum_lanes(acc[i][j]);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
}

// Rows [i0, i1) of C = A @ B^T (N <= kDotMaxN) on the calling thread.
void sgemm_nt_dots(int64_t i0, int64_t i1, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  for (int64_t pc = 0; pc < K; pc += kDotKc) {
    const int64_t kc = std::min(kDotKc, K - pc);
    for (int64_t i = i0; i < i1; i += kDotMr) {
      const int64_t rows = std::min(kDotMr, i1 - i);
      const float* a = A + i * lda + pc;
      for (int64_t j = 0; j < N;) {  // blocks of 6 columns, the last of 1-5
        const float* b = B + j * ldb + pc;
        float* c = C + i * ldc + j;
        const bool acc = accumulate || pc > 0;
        switch (std::min<int64_t>(6, N - j)) {
          case 6: dot_block<6>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 6; break;
          case 5: dot_block<5>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 5; break;
          case 4: dot_block<4>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 4; break;
          case 3: dot_block<3>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 3; break;
          case 2: dot_block<2>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 2; break;
          default: dot_block<1>(kc, a, lda, rows, b, ldb, c, ldc, acc); j += 1; break;
        }
      }
    }
  }
}

}  // namespace

bool sgemm_avx512_available() {
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
}

void sgemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0 || (K <= 0 && accumulate)) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  if (!ta && tb && N <= kDotMaxN && K >= kDotMinK) {  // dot products; threads take blocks of 4 rows
    const int64_t blocks = (M + kDotMr - 1) / kDotMr;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, K * N * kDotMr));
    parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
      sgemm_nt_dots(b0 * kDotMr, std::min(M, b1 * kDotMr), N, K, A, lda, B, ldb, C, ldc, accumulate);
    });
    return;
  }
  // Threads take whole tiles of the longer side of C; each packs its own part of that operand and
  // all of the other (small next to the product when the split side is long).
  const int64_t row_tiles = (M + kMr - 1) / kMr, col_tiles = (N + kNr - 1) / kNr;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, K * (col_tiles >= row_tiles ? M * kNr : N * kMr)));
  if (col_tiles >= row_tiles) {
    parallel_for(0, col_tiles, grain, [&](int64_t t0, int64_t t1) {
      const int64_t j0 = t0 * kNr, j1 = std::min(N, t1 * kNr);
      sgemm_serial(ta, tb, M, j1 - j0, K, A, lda, tb ? B + j0 * ldb : B + j0, ldb, C + j0, ldc, accumulate);
    });
  } else {
    parallel_for(0, row_tiles, grain, [&](int64_t t0, int64_t t1) {
      const int64_t i0 = t0 * kMr, i1 = std::min(M, t1 * kMr);
      sgemm_serial(ta, tb, i1 - i0, N, K, ta ? A + i0 : A + i0 * lda, lda, B, ldb, C + i0 * ldc, ldc, accumulate);
    });
  }
}

#else  // not x86-64 with GCC / Clang

bool sgemm_avx512_available() { return false; }

void sgemm_avx512(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*,
                  int64_t, bool) {
  CTXPOOL_CHECK(false, "sgemm_avx512: not built for this CPU (x86-64 with GCC or Clang only)");
}

#endif

}  // namespace ctxpool::cpu
