// Our AVX-512 float32 GEMM (ops/cpu/sgemm_avx512.h) against float64 loops: every transpose, sizes
// that are and are not whole tiles (12 x 32) and blocks (k 256, rows 144, columns 2048), leading
// dimensions wider than the matrix, an empty k, the dot-product path for A @ B^T with few columns,
// and the same bits for any thread count.
#include "ops/cpu/sgemm_avx512.h"

#include <cmath>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;

namespace {

struct Problem {
  int64_t m, n, k;
  bool ta, tb;
  int64_t pad;  // extra columns in every leading dimension
};

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Runs the problem; returns the largest error against float64 loops relative to sum |a| |b|, and
// fails if any entry outside C's [m, n] part of its leading dimension was touched.
double relative_error(const Problem& p, std::vector<float>* result = nullptr) {
  std::mt19937 rng(static_cast<unsigned>(p.m * 7919 + p.n * 31 + p.k));
  const int64_t lda = (p.ta ? p.m : p.k) + p.pad, ldb = (p.tb ? p.k : p.n) + p.pad, ldc = p.n + p.pad;
  const std::vector<float> a = random_floats((p.ta ? p.k : p.m) * lda, rng);
  const std::vector<float> b = random_floats((p.tb ? p.n : p.k) * ldb, rng);
  std::vector<float> c(p.m * ldc, 12345.0f);
  cpu::sgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, a.data(), lda, b.data(), ldb, c.data(), ldc);
  double worst = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double want = 0, scale = 1e-30;
      for (int64_t k = 0; k < p.k; ++k) {
        const double x = p.ta ? a[k * lda + i] : a[i * lda + k];
        const double y = p.tb ? b[j * ldb + k] : b[k * ldb + j];
        want += x * y;
        scale += std::abs(x * y);
      }
      worst = std::max(worst, std::abs(c[i * ldc + j] - want) / scale);
    }
    for (int64_t j = p.n; j < ldc; ++j) EXPECT_EQ(c[i * ldc + j], 12345.0f) << "wrote past column " << p.n;
  }
  if (result != nullptr) *result = c;
  return worst;
}

}  // namespace

TEST(SgemmAvx512, MatchesFloat64Loops) {
  if (!cpu::sgemm_avx512_available()) GTEST_SKIP() << "this CPU has no AVX-512: matmul uses BLAS";
  const std::vector<Problem> problems = {
      {1, 1, 1, false, false, 0},    {12, 32, 8, false, false, 0},   {13, 33, 7, false, false, 3},
      {5, 70, 300, false, true, 1},  {40, 9, 257, true, false, 2},   {150, 65, 520, true, true, 0},
      {145, 31, 3, false, false, 5}, {3, 2100, 17, false, true, 0},  {200, 50, 1, true, true, 4},
      {64, 300, 576, false, false, 0},
      // A @ B^T with at most 16 columns and k >= 128 goes through dot products: row blocks of 4 and
      // column blocks of 6 with their edges, k-tails under 16, and k-blocks of 2048 (a conv weight
      // gradient's shape); with a shorter k, through tiles.
      {16, 9, 6272, false, true, 0}, {7, 16, 4100, false, true, 3}, {5, 3, 130, false, true, 0},
      {9, 5, 2049, false, true, 1},  {1, 1, 1, false, true, 0},    {64, 13, 20, false, true, 2}};
  for (const Problem& p : problems) {
    SCOPED_TRACE(::testing::Message() << p.m << " x " << p.n << " x " << p.k << " ta " << p.ta << " tb " << p.tb
                                    << " pad " << p.pad);
    EXPECT_LE(relative_error(p), 1e-6);  // float32 rounding of k products: ~k * 2^-24 of sum |a b| at most
  }
}

TEST(SgemmAvx512, EmptyKGivesZerosAndEmptyOutputsAreNoOps) {
  if (!cpu::sgemm_avx512_available()) GTEST_SKIP() << "this CPU has no AVX-512: matmul uses BLAS";
  std::vector<float> c(6, 7.0f);
  const float a = 1, b = 1;
  cpu::sgemm_avx512(false, false, 2, 3, 0, &a, 1, &b, 3, c.data(), 3);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
  cpu::sgemm_avx512(false, false, 0, 3, 4, &a, 4, &b, 3, c.data(), 3);  // nothing to write
  cpu::sgemm_avx512(false, false, 2, 0, 4, &a, 4, &b, 1, c.data(), 1);
}

// accumulate adds the product to C, on the tiles' path and the dot products' path (and k = 0 adds nothing).
TEST(SgemmAvx512, AccumulateAddsToC) {
  if (!cpu::sgemm_avx512_available()) GTEST_SKIP() << "this CPU has no AVX-512: matmul uses BLAS";
  for (const Problem& p : {Problem{13, 40, 300, false, true, 0}, Problem{13, 40, 300, true, false, 0},
                           Problem{13, 9, 3000, false, true, 0}, Problem{13, 9, 0, false, true, 0}}) {
    SCOPED_TRACE(::testing::Message() << p.m << " x " << p.n << " x " << p.k << " ta " << p.ta << " tb " << p.tb);
    std::mt19937 rng(7);
    const int64_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
    const std::vector<float> a = random_floats(p.m * p.k, rng), b = random_floats(p.n * p.k, rng);
    const std::vector<float> c0 = random_floats(p.m * p.n, rng);
    std::vector<float> product(p.m * p.n), c = c0;
    cpu::sgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, a.data(), lda, b.data(), ldb, product.data(), p.n);
    cpu::sgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, a.data(), lda, b.data(), ldb, c.data(), p.n, /*accumulate=*/true);
    for (int64_t e = 0; e < p.m * p.n; ++e) EXPECT_NEAR(c[e], c0[e] + product[e], 1e-5f * (1 + std::abs(product[e])));
  }
}

TEST(SgemmAvx512, SameBitsForAnyThreadCount) {
  if (!cpu::sgemm_avx512_available()) GTEST_SKIP() << "this CPU has no AVX-512: matmul uses BLAS";
  const int threads = get_num_threads();
  for (const Problem& p : {Problem{700, 90, 600, false, false, 0}, Problem{40, 1500, 300, true, true, 1},
                          Problem{33, 11, 5000, false, true, 0}}) {
    std::vector<float> results[2];
    for (int n : {1, 2}) {
      set_num_threads(n);
      relative_error(p, &results[n - 1]);
    }
    EXPECT_EQ(results[0], results[1]);
  }
  set_num_threads(threads);
}
