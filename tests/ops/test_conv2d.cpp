// conv2d and its im2col2d / col2im2d pair: a naive-loop reference over stride, padding, dilation,
// groups (depthwise too) and non-square kernels, float64 gradchecks and a gradgradcheck, float32 vs
// float64, the adjoint identity, determinism over thread counts, the CPU's fused kernels against the
// composition conv2d_im2col, and every bad input.
// PyTorch's own values are checked in test_golden.cpp.
#include <cmath>

#include "core/parallel.h"
#include "helpers/test_utils.h"

using namespace ctxpool;
using namespace ctxpool::testing;
using V = std::vector<Tensor>;
using Size2 = std::array<int64_t, 2>;

namespace {

struct Case {
  const char* name;
  int64_t batch, c_in, c_out, h, w;
  Size2 kernel, stride, padding, dilation;
  int64_t groups;
};

const Case kCases[] = {
    {"3x3", 2, 3, 4, 6, 5, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1},
    {"3x3 pad 1", 1, 2, 3, 5, 5, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1},
    {"stride 2, pad 1", 2, 2, 3, 7, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1},
    {"non-square kernel and stride", 2, 2, 3, 6, 7, {2, 3}, {1, 2}, {1, 0}, {1, 1}, 1},
    {"dilation 2", 1, 2, 2, 7, 7, {3, 2}, {1, 1}, {2, 1}, {2, 2}, 1},
    {"groups 2", 2, 4, 6, 5, 5, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2},
    {"depthwise", 2, 3, 3, 5, 6, {3, 3}, {2, 1}, {1, 1}, {1, 1}, 3},
    {"depthwise x2 channels", 1, 2, 4, 5, 5, {2, 2}, {1, 1}, {0, 1}, {1, 1}, 2},
    {"1x1", 2, 3, 2, 4, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},
    {"1x1 stride 2", 1, 3, 2, 5, 5, {1, 1}, {2, 2}, {0, 0}, {1, 1}, 1},
    {"patches: stride == kernel", 2, 1, 3, 8, 9, {4, 4}, {4, 4}, {0, 0}, {1, 1}, 1},
    {"padding larger than kernel", 1, 1, 2, 3, 3, {2, 2}, {1, 1}, {3, 2}, {1, 1}, 1},
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// out[b, o, oh, ow] = bias[o] + sum over the group's channels c and taps (i, j) of
// w[o, c, i, j] * x[b, group * C_in/G + c, oh s - p + i d, ow s - p + j d], by plain loops.
std::vector<double> conv2d_loops(const Case& c, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t ho = out_size(c.h, c.kernel[0], c.stride[0], c.padding[0], c.dilation[0]);
  const int64_t wo = out_size(c.w, c.kernel[1], c.stride[1], c.padding[1], c.dilation[1]);
  const int64_t cg = c.c_in / c.groups, og = c.c_out / c.groups;
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(c.c_out, 0.0);
  std::vector<double> out;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t o = 0; o < c.c_out; ++o)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          double acc = bv[o];
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < c.kernel[0]; ++i)
              for (int64_t j = 0; j < c.kernel[1]; ++j) {
                const int64_t ih = oh * c.stride[0] - c.padding[0] + i * c.dilation[0];
                const int64_t iw = ow * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                const int64_t channel = o / og * cg + ci;
                acc += wv[((o * cg + ci) * c.kernel[0] + i) * c.kernel[1] + j] *
                       xv[((b * c.c_in + channel) * c.h + ih) * c.w + iw];
              }
          out.push_back(acc);
        }
  return out;
}

Tensor run(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  return ops::conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
}

double max_diff(const Tensor& a, const Tensor& b) {
  return ops::abs(ops::sub(a.to(kFloat64), b.to(kFloat64))).max().item();
}

}  // namespace

TEST(Conv2d, HandComputedValues) {
  // One 3x3 image, one 2x2 kernel: out[oh, ow] = sum of w * the 2x2 block at (oh, ow).
  Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, kFloat64);
  Tensor w = tensor({1, 0, 0, -1}, {1, 1, 2, 2}, kFloat64);
  expect_values(ops::conv2d(x, w), {-4, -4, -4, -4}, 1e-12);
  // Padding 1, stride 2 on the padded 5x5 image: out = 0.5 + p[2 oh, 2 ow] - p[2 oh + 1, 2 ow + 1].
  expect_values(ops::conv2d(x, w, tensor({0.5}, kFloat64), {2, 2}, {1, 1}), {0.5 - 1, 0.5 - 3, 0.5 - 7, 0.5 + 5 - 9},
                1e-12);
}

TEST(Conv2d, MatchesLoopReference) {
  manual_seed(0);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = randn({c.batch, c.c_in, c.h, c.w}, kFloat64);
    Tensor w = randn({c.c_out, c.c_in / c.groups, c.kernel[0], c.kernel[1]}, kFloat64);
    Tensor b = randn({c.c_out}, kFloat64);
    const Tensor y = run(c, x, w, b);
    EXPECT_EQ(y.sizes(), (Shape{c.batch, c.c_out, out_size(c.h, c.kernel[0], c.stride[0], c.padding[0], c.dilation[0]),
                                out_size(c.w, c.kernel[1], c.stride[1], c.padding[1], c.dilation[1])}));
    expect_values(y, conv2d_loops(c, x, w, b), 1e-12);
    expect_values(run(c, x, w, Tensor()), conv2d_loops(c, x, w, Tensor()), 1e-12);
  }
}

TEST(Conv2d, NonContiguousInputs) {
  manual_seed(1);
  const Case& c = kCases[2];
  Tensor x = randn({c.batch, c.c_in, c.w, c.h}, kFloat64).transpose(2, 3);  // [B, C, H, W], a view
  Tensor w = randn({c.c_out, c.c_in, 3, 3}, kFloat64).transpose(2, 3);
  ASSERT_FALSE(x.is_contiguous());
  expect_values(run(c, x, w, Tensor()), conv2d_loops(c, x.contiguous(), w.contiguous(), Tensor()), 1e-12);
  // A channels-last view (what a permute from [B, H, W, C] gives) into a 1x1 convolution.
  const Case& p = kCases[8];
  Tensor xt = randn({p.batch, p.h, p.w, p.c_in}, kFloat64).permute({0, 3, 1, 2});
  Tensor w1 = randn({p.c_out, p.c_in, 1, 1}, kFloat64);
  expect_values(run(p, xt, w1, Tensor()), conv2d_loops(p, xt.contiguous(), w1, Tensor()), 1e-12);
}

TEST(Conv2d, Gradcheck) {
  manual_seed(2);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    auto f = [c](const V& in) { return run(c, in[0], in[1], in.size() > 2 ? in[2] : Tensor()); };
    const Shape xs{c.batch, c.c_in, c.h, c.w}, ws{c.c_out, c.c_in / c.groups, c.kernel[0], c.kernel[1]};
    EXPECT_GRADCHECK(f, V{param(xs), param(ws), param({c.c_out})});
  }
  // Without bias.
  const Case& c = kCases[3];
  EXPECT_GRADCHECK([c](const V& in) { return run(c, in[0], in[1], Tensor()); },
                   V{param({1, c.c_in, c.h, c.w}), param({c.c_out, c.c_in, c.kernel[0], c.kernel[1]})});
}

TEST(Conv2d, Gradgradcheck) {
  manual_seed(3);
  for (const Case& c : {kCases[2], kCases[6]}) {  // stride + padding; depthwise
    SCOPED_TRACE(c.name);
    auto f = [c](const V& in) { return run(c, in[0], in[1], in[2]); };
    EXPECT_GRADGRADCHECK(f, V{param({1, c.c_in, 5, 4}), param({c.c_out, c.c_in / c.groups, c.kernel[0], c.kernel[1]}),
                              param({c.c_out})});
  }
}

TEST(Conv2d, Float32AgreesWithFloat64) {
  manual_seed(4);
  for (const Case& c : {kCases[2], kCases[5], kCases[10]}) {
    SCOPED_TRACE(c.name);
    const V in{randn({c.batch, c.c_in, c.h, c.w}, kFloat64),
               randn({c.c_out, c.c_in / c.groups, c.kernel[0], c.kernel[1]}, kFloat64), randn({c.c_out}, kFloat64)};
    const Tensor up = randn(run(c, in[0], in[1], in[2]).sizes(), kFloat64);
    V results[2];
    for (int k = 0; k < 2; ++k) {
      const DType dtype = k == 0 ? kFloat64 : kFloat32;
      V leaves;
      for (const Tensor& t : in) leaves.push_back(t.to(dtype).clone().requires_grad_(true));
      const Tensor y = run(c, leaves[0], leaves[1], leaves[2]);
      EXPECT_EQ(y.dtype(), dtype);
      y.backward(up.to(dtype));
      results[k] = {y, leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
    }
    for (size_t t = 0; t < 4; ++t) EXPECT_LE(max_diff(results[0][t], results[1][t]), 5e-5) << "tensor " << t;
  }
}

// The CPU's fused convolution (ops/cpu/conv2d.cpp) against the composition conv2d_im2col, at sizes
// where the batch splits into several chunks of several images with a shorter last one: 35 images of
// 16 x 12 x 12 with a 3x3 kernel are 165,888 bytes of float64 columns each, 3 to a 512 KiB chunk (and
// ceil(35 / 16) = 3 to keep 16 chunks or fewer): 11 chunks of 3 and one of 2.
TEST(Conv2d, FusedKernelsMatchTheComposition) {
  manual_seed(8);
  struct Fused {
    const char* name;
    int64_t c_out, groups;
    Size2 stride, dilation;
  };
  for (const Fused& f : {Fused{"3 chunks", 5, 1, {1, 1}, {1, 1}}, Fused{"groups 2", 6, 2, {1, 1}, {1, 1}},
                         Fused{"depthwise, stride 2, dilation 2", 16, 16, {2, 2}, {2, 2}}}) {
    SCOPED_TRACE(f.name);
    const V in{randn({35, 16, 12, 12}, kFloat64), randn({f.c_out, 16 / f.groups, 3, 3}, kFloat64),
               randn({f.c_out}, kFloat64)};
    V results[2];
    for (int k = 0; k < 2; ++k) {
      V leaves;
      for (const Tensor& t : in) leaves.push_back(t.clone().requires_grad_(true));
      const Tensor y = (k == 0 ? ops::conv2d : ops::conv2d_im2col)(leaves[0], leaves[1], leaves[2], f.stride, {1, 1},
                                                                  f.dilation, f.groups);
      ops::sum(ops::mul(y, y)).backward();
      results[k] = {y, leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
    }
    for (size_t t = 0; t < 4; ++t) EXPECT_LE(max_diff(results[0][t], results[1][t]), 1e-10) << "tensor " << t;
    const Case c{f.name, 35, 16, f.c_out, 12, 12, {3, 3}, f.stride, {1, 1}, f.dilation, f.groups};
    expect_values(results[0][0], conv2d_loops(c, in[0], in[1], in[2]), 1e-10);
  }
}

// Both of the fused kernels' layouts, in float32 (our AVX-512 GEMM where the CPU has it, BLAS
// otherwise) and float64, against the composition:
// - planes under 256 outputs go through one product per chunk: 40 images of 8 x 10 x 10 are 28,800
//   bytes of float32 columns each, so 3 to a chunk (ceil(40 / 16)): 13 chunks of 3 and one of 1;
// - larger planes are multiplied image by image in place, the weight gradient accumulated over a
//   chunk's images: one input channel at 20 x 20 (a weight gradient of 9 columns: dot products), three
//   at 17 x 17 with groups of 1 and 3 (27 and 9 columns), again 3 images to a chunk.
TEST(Conv2d, FusedKernelsInBothLayoutsWithSeveralImagesPerChunk) {
  manual_seed(11);
  struct Layout {
    const char* name;
    Shape x, w;
    int64_t groups;
  };
  for (const Layout& l : {Layout{"chunk product", {40, 8, 10, 10}, {12, 8, 3, 3}, 1},
                          Layout{"per image, dot products", {40, 1, 20, 20}, {16, 1, 3, 3}, 1},
                          Layout{"per image, tiles", {40, 3, 17, 17}, {8, 3, 3, 3}, 1},
                          Layout{"per image, groups", {40, 3, 17, 17}, {6, 1, 3, 3}, 3}}) {
    for (DType dtype : {kFloat32, kFloat64}) {
      SCOPED_TRACE(::testing::Message() << l.name << ", " << dtype_name(dtype));
      const V in{randn(l.x, dtype), randn(l.w, dtype), randn({l.w[0]}, dtype)};
      V results[2];
      for (int k = 0; k < 2; ++k) {
        V leaves;
        for (const Tensor& t : in) leaves.push_back(t.clone().requires_grad_(true));
        const Tensor y = (k == 0 ? ops::conv2d : ops::conv2d_im2col)(leaves[0], leaves[1], leaves[2], {1, 1},
                                                                    {1, 1}, {1, 1}, l.groups);
        ops::sum(ops::mul(y, y)).backward();
        results[k] = {y, leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
      }
      // Relative to each tensor's largest entry: sums of up to 16,000 products.
      const double tol = dtype == kFloat32 ? 1e-5 : 1e-12;
      for (size_t t = 0; t < 4; ++t) {
        const double scale = ops::abs(results[1][t].to(kFloat64)).max().item();
        EXPECT_LE(max_diff(results[0][t], results[1][t]), tol * scale) << "tensor " << t;
      }
    }
  }
}

TEST(Conv2d, FusedKernelsGiveTheSameBitsForAnyThreadCount) {
  manual_seed(9);
  const int threads = get_num_threads();
  // Planes of 196 (one product per chunk) and of 400 outputs (image by image; 40 images make chunks
  // of 3, so the weight gradient accumulates over a chunk's images).
  for (const V& in : {V{randn({9, 16, 14, 14}), randn({32, 16, 3, 3}), randn({32})},
                      V{randn({40, 1, 20, 20}), randn({16, 1, 3, 3}), randn({16})}}) {
    V results[2];
    for (int n : {1, 2}) {
      set_num_threads(n);
      V leaves;
      for (const Tensor& t : in) leaves.push_back(t.clone().requires_grad_(true));
      const Tensor y = ops::conv2d(leaves[0], leaves[1], leaves[2], {1, 1}, {1, 1});
      ops::sum(ops::mul(y, y)).backward();
      results[n - 1] = {y, leaves[0].grad(), leaves[1].grad()};
    }
    set_num_threads(threads);
    for (size_t t = 0; t < 3; ++t)
      EXPECT_EQ(results[0][t].to_vector<double>(), results[1][t].to_vector<double>()) << "tensor " << t;
  }
}

// Only the input's or only the weight's gradient: the other is neither computed nor required.
TEST(Conv2d, FusedBackwardForOneInput) {
  manual_seed(10);
  const Tensor x = randn({3, 4, 6, 6}, kFloat64), w = randn({2, 4, 3, 3}, kFloat64);
  for (int which = 0; which < 2; ++which) {
    const Tensor xl = x.clone().requires_grad_(which == 0), wl = w.clone().requires_grad_(which == 1);
    ops::sum(ops::conv2d(xl, wl)).backward();
    const Tensor xr = x.clone().requires_grad_(which == 0), wr = w.clone().requires_grad_(which == 1);
    ops::sum(ops::conv2d_im2col(xr, wr)).backward();
    const Tensor& got = which == 0 ? xl.grad() : wl.grad();
    const Tensor& want = which == 0 ? xr.grad() : wr.grad();
    EXPECT_LE(max_diff(got, want), 1e-12);
    EXPECT_FALSE((which == 0 ? wl : xl).grad().defined());
  }
}

// <im2col(x), c> = <x, col2im(c)>: col2im2d is im2col2d's adjoint, for every geometry.
TEST(Im2col2d, Col2imIsItsAdjoint) {
  manual_seed(5);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = randn({c.batch, c.c_in, c.h, c.w}, kFloat64);
    const Tensor cols = ops::im2col2d(x, c.kernel, c.stride, c.padding, c.dilation);
    const Tensor r = randn(cols.sizes(), kFloat64);
    const Tensor back = ops::col2im2d(r, {c.h, c.w}, c.kernel, c.stride, c.padding, c.dilation);
    EXPECT_EQ(back.sizes(), x.sizes());
    EXPECT_NEAR(ops::sum(ops::mul(cols, r)).item(), ops::sum(ops::mul(x, back)).item(), 1e-10);
  }
}

TEST(Im2col2d, RowLayoutAndPadding) {
  // x [1, 2, 2, 2], 2x2 kernel, padding 1: 3 x 3 positions; row (c * 2 + i) * 2 + j is tap (i, j) of channel c.
  Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}, kFloat64);
  const Tensor cols = ops::im2col2d(x, {2, 2}, {1, 1}, {1, 1});
  ASSERT_EQ(cols.sizes(), (Shape{1, 8, 9}));
  // Tap (0, 0) of channel 0 at (oh, ow) reads x[oh - 1, ow - 1]; tap (1, 1) of channel 1 reads x[oh, ow] + 4.
  expect_values(cols.select(1, 0), {0, 0, 0, 0, 1, 2, 0, 3, 4}, 0.0);
  expect_values(cols.select(1, 7), {5, 6, 0, 7, 8, 0, 0, 0, 0}, 0.0);
  // Every pixel is read by 4 taps, so col2im of ones counts 4 everywhere.
  expect_values(ops::col2im2d(ones_like(cols), {2, 2}, {2, 2}, {1, 1}, {1, 1}), std::vector<double>(8, 4.0), 0.0);
}

TEST(Im2col2d, GradcheckBothWays) {
  manual_seed(6);
  for (const Case& c : {kCases[2], kCases[4], kCases[10]}) {
    SCOPED_TRACE(c.name);
    const Tensor cols = ops::im2col2d(zeros({1, 2, c.h, c.w}, kFloat64), c.kernel, c.stride, c.padding, c.dilation);
    EXPECT_GRADCHECK([c](const V& in) { return ops::im2col2d(in[0], c.kernel, c.stride, c.padding, c.dilation); },
                     V{param({1, 2, c.h, c.w})});
    EXPECT_GRADCHECK(
        [c](const V& in) { return ops::col2im2d(in[0], {c.h, c.w}, c.kernel, c.stride, c.padding, c.dilation); },
        V{param(cols.sizes())});
  }
}

TEST(Im2col2d, SameResultForAnyThreadCount) {
  manual_seed(7);
  for (DType dtype : {kFloat32, kFloat64}) {
    Tensor x = randn({4, 16, 20, 20}, dtype);
    const Size2 k{3, 3}, s{2, 1}, p{1, 2}, d{1, 2};
    const int threads = get_num_threads();
    V results[2];
    for (int n : {1, 2}) {
      set_num_threads(n);
      const Tensor cols = ops::im2col2d(x, k, s, p, d);
      results[n - 1] = {cols, ops::col2im2d(ops::mul(cols, cols), {20, 20}, k, s, p, d)};
    }
    set_num_threads(threads);
    for (size_t t = 0; t < 2; ++t) EXPECT_EQ(results[0][t].to_vector<double>(), results[1][t].to_vector<double>());
  }
}

TEST(Conv2d, RejectsBadInput) {
  const Tensor x = zeros({1, 4, 5, 5}), w = zeros({2, 4, 3, 3});
  EXPECT_ERROR_WITH(ops::conv2d(zeros({4, 5, 5}), w), "conv2d", "[4, 5, 5]", "4-D");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({2, 4, 3})), "conv2d", "weight", "[2, 4, 3]", "4-D");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({2, 3, 3, 3})), "conv2d", "[1, 4, 5, 5]", "4 channels", "[2, 3, 3, 3]",
                    "C_in = 3");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({2, 4, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2), "conv2d",
                    "groups = 2", "C_in = 8");
  EXPECT_ERROR_WITH(ops::conv2d(zeros({1, 3, 5, 5}), zeros({2, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2),
                    "conv2d", "[1, 3, 5, 5]", "C_in = 3", "groups = 2", "does not divide");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({3, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2), "conv2d",
                    "[3, 2, 3, 3]", "C_out = 3", "groups = 2", "does not divide");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, 1}, 0), "conv2d", "groups", ">= 1", "got 0");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, Tensor(), {0, 1}), "conv2d", "stride must be positive", "[0, 1]");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {1, -1}), "conv2d", "dilation must be positive",
                    "[1, -1]");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, Tensor(), {1, 1}, {-1, 0}), "conv2d", "padding must be non-negative", "[-1, 0]");
  EXPECT_ERROR_WITH(ops::conv2d(zeros({1, 4, 2, 5}), w), "conv2d", "[1, 4, 2, 5]", "padded to [2, 5]",
                    "span [3, 3]", "empty");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, Tensor(), {1, 1}, {0, 0}, {3, 1}), "conv2d", "span [7, 3]", "dilation [3, 1]");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, zeros({3})), "conv2d", "bias", "[2]", "[3]");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, zeros({2, 1})), "conv2d", "bias", "[2, 1]");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({2, 4, 3, 3}, kFloat64)), "conv2d", "dtype mismatch", "float32", "float64");
  EXPECT_ERROR_WITH(ops::conv2d(x, w, zeros({2}, kFloat64)), "conv2d", "dtype mismatch");
  EXPECT_ERROR_WITH(ops::conv2d(zeros({1, 4, 5, 5}, kInt64), w), "conv2d", "floating", "int64");
  EXPECT_ERROR_WITH(ops::conv2d(x, Tensor()), "conv2d", "weight", "undefined");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({0, 4, 3, 3})), "conv2d", "C_out > 0");
  EXPECT_ERROR_WITH(ops::conv2d(x, zeros({2, 4, 0, 3})), "conv2d", "kernel size must be positive", "[0, 3]");

  EXPECT_ERROR_WITH(ops::im2col2d(zeros({4, 5, 5}), {2, 2}), "im2col2d", "[4, 5, 5]", "4-D");
  EXPECT_ERROR_WITH(ops::im2col2d(x, {6, 2}), "im2col2d", "span [6, 2]", "empty");
  EXPECT_ERROR_WITH(ops::col2im2d(zeros({1, 8, 16}), {5, 5}, {3, 3}), "col2im2d", "[1, 8, 16]", "multiple of kh * kw = 9");
  EXPECT_ERROR_WITH(ops::col2im2d(zeros({1, 18, 16}), {5, 5}, {3, 3}), "col2im2d", "16 columns", "3 x 3 = 9");
  EXPECT_ERROR_WITH(ops::col2im2d(zeros({18, 16}), {5, 5}, {3, 3}), "col2im2d", "[18, 16]", "3-D");
  EXPECT_ERROR_WITH(ops::col2im2d(zeros({1, 9, 1}), {2, 2}, {3, 3}), "col2im2d", "output_size [2, 2] padded to [2, 2]",
                    "span [3, 3]");
}

TEST(Conv2d, RejectsDeviceMismatch) {
  if (!ops::cuda_is_available()) GTEST_SKIP() << "no CUDA device";
  EXPECT_ERROR_WITH(ops::conv2d(zeros({1, 3, 4, 4}), zeros({2, 3, 2, 2}, cuda_device())), "conv2d", "device mismatch",
                    "cuda:0");
  EXPECT_ERROR_WITH(ops::conv2d(zeros({1, 3, 4, 4}), zeros({2, 3, 2, 2}), zeros({2}, cuda_device())), "conv2d",
                    "device mismatch", "cuda:0");
}
