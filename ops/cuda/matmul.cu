// Batched matrix multiply through cuBLAS (strided batched gemm, float32 and float64).
//
// cuBLAS is column-major, our tensors row-major: out = a @ b is computed as out^T = b^T @ a^T, and a
// row-major matrix is exactly its transpose seen column-major, so no data moves. Batch dims (already
// broadcast, possibly with stride 0) go to one strided-batched call when each operand's batch offsets
// are bi * stride; otherwise one call per index of the outer batch dims.
#include <climits>
#include <vector>

#include "cuda/check.h"
#include "cuda/cublas.h"
#include "ops/cuda/launch.cuh"
#include "ops/kernels.h"

namespace ctxpool::cuda {

// Reached through the kernel table only (add_matmul_kernels at the end).
namespace {

// If t's batch dims [0, nb) address matrix bi at bi * stride, returns true and that stride.
bool flat_batch_stride(const Tensor& t, const Shape& batch, int64_t& stride) {
  stride = 0;
  int64_t inner = 1;  // matrices per step of the current dim
  bool first = true;
  for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    if (first) {
      stride = t.strides()[d];
      first = false;
    } else if (t.strides()[d] != stride * inner) {
      return false;
    }
    inner *= batch[d];
  }
  return true;
}

template <typename T>
void gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                          const T* A, int lda, long long sa, const T* B, int ldb, long long sb, T* C, int ldc,
                          long long sc, int batch) {
  const T one = 1, zero = 0;
  if constexpr (std::is_same_v<T, float>) {
    check_cublas(cublas().sgemm_strided_batched(h, ta, tb, m, n, k, &one, A, lda, sa, B, ldb, sb, &zero, C, ldc, sc, batch),
                 "cublasSgemmStridedBatched");
  } else {
    check_cublas(cublas().dgemm_strided_batched(h, ta, tb, m, n, k, &one, A, lda, sa, B, ldb, sb, &zero, C, ldc, sc, batch),
                 "cublasDgemmStridedBatched");
  }
}

// a [..., M, K] and b [..., K, N] (batch dims broadcast, possibly stride 0) -> out contiguous [..., M, N].
void matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t nd = out.dim();
  const int64_t M = out.sizes()[nd - 2], N = out.sizes()[nd - 1], K = a.sizes()[nd - 1];
  const Shape batch(out.sizes().begin(), out.sizes().end() - 2);
  const int64_t nbatch = shape_numel(batch);
  if (out.numel() == 0) return;
  if (K == 0) return kernels(out.device()).fill(out, 0.0);
  CTXPOOL_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX, "matmul: cuBLAS takes sizes below 2^31, got M = ", M,
                ", N = ", N, ", K = ", K);

  const GemmLayout la = gemm_layout(M, K, a.strides()[nd - 2], a.strides()[nd - 1]);
  const GemmLayout lb = gemm_layout(K, N, b.strides()[nd - 2], b.strides()[nd - 1]);
  CTXPOOL_CHECK(la.ok && lb.ok, "matmul kernel: operands must have a unit stride in one of the last two dims (the op "
                "makes them contiguous otherwise)");
  CTXPOOL_CHECK(la.ld <= INT_MAX && lb.ld <= INT_MAX, "matmul: cuBLAS takes leading dimensions below 2^31, got ",
                la.ld, " (a ", a.sizes(), ") and ", lb.ld, " (b ", b.sizes(), ")");
  set_device(out.device().index);
  cublasHandle_t h = cublas_handle(out.device().index);
  // out^T [N, M] = op(b^T) [N, K] @ op(a^T) [K, M], all column-major.
  const cublasOperation_t tb = lb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t ta = la.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;

  CTXPOOL_DISPATCH_FLOAT(out.dtype(), "matmul", [&] {
    using T = scalar_t;
    const T* ap = data<T>(a);
    const T* bp = data<T>(b);
    T* op = data<T>(out);
    int64_t sa = 0, sb = 0;
    if (flat_batch_stride(a, batch, sa) && flat_batch_stride(b, batch, sb) && nbatch <= INT_MAX) {
      gemm_strided_batched<T>(h, tb, ta, int(N), int(M), int(K), bp, int(lb.ld), sb, ap, int(la.ld), sa, op, int(N),
                              M * N, int(nbatch));
      return;
    }
    // General broadcast: loop over all batch dims but the last, one strided-batched call each.
    const int64_t last = batch.back();
    CTXPOOL_CHECK(last <= INT_MAX, "matmul: cuBLAS takes batches below 2^31, got ", last, " (out ", out.sizes(), ")");
    const int64_t last_sa = a.strides()[batch.size() - 1], last_sb = b.strides()[batch.size() - 1];
    for (int64_t outer = 0; outer < nbatch / last; ++outer) {
      int64_t oa = 0, ob = 0, rem = outer;
      for (int64_t d = static_cast<int64_t>(batch.size()) - 2; d >= 0; --d) {
        const int64_t i = rem % batch[d];
        rem /= batch[d];
        oa += i * a.strides()[d];
        ob += i * b.strides()[d];
      }
      gemm_strided_batched<T>(h, tb, ta, int(N), int(M), int(K), bp + ob, int(lb.ld), last_sb, ap + oa, int(la.ld),
                              last_sa, op + outer * last * M * N, int(N), M * N, int(last));
    }
  });
}

}  // namespace

void add_matmul_kernels(Kernels& k) {
  k.matmul = matmul;
}

}  // namespace ctxpool::cuda
