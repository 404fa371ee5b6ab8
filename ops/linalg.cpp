// matmul for 1-D..N-D inputs with broadcast batch dims (torch.matmul semantics).
#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

// a [..., M, K] @ b [..., K, N] with identical batch dims (already expanded).
// Backward: dA = g @ b^T, dB = a^T @ g, written with this same op so double backward works.
Tensor batched_matmul(const Tensor& a, const Tensor& b) {
  const int64_t nd = a.dim();
  Shape out_sizes(a.sizes().begin(), a.sizes().end() - 1);
  out_sizes.push_back(b.sizes()[nd - 1]);
  Tensor out = new_empty(out_sizes, a.dtype(), a.device());
  {
    autograd::NoGradGuard no_grad;
    const Tensor a_ready = matmul_operand_ok(a) ? a.detach() : a.detach().contiguous();
    const Tensor b_ready = matmul_operand_ok(b) ? b.detach() : b.detach().contiguous();
    kernel(&Kernels::matmul, "matmul", a)(a_ready, b_ready, out);
  }
  return record("matmul", {a, b}, out, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sa.unpack("matmul"), y = sb.unpack("matmul");
    return Grads{n.needs_input_grad(0) ? batched_matmul(g, y.transpose(-1, -2)) : Tensor(),
                 n.needs_input_grad(1) ? batched_matmul(x.transpose(-1, -2), g) : Tensor()};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same("matmul", a, b);
  check_floating("matmul", a);
  CTXPOOL_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dim, got ",
                a.sizes(), " and ", b.sizes());
  const int64_t ka = a.sizes().back();
  const int64_t kb = b.dim() == 1 ? b.sizes()[0] : b.sizes()[b.dim() - 2];
  CTXPOOL_CHECK(ka == kb, "matmul: cannot multiply ", a.sizes(), " by ", b.sizes(),
                ": inner sizes differ (", ka, " vs ", kb, ")");

  // Vectors become matrices and are squeezed back afterwards.
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);

  const Shape batch_a(a.sizes().begin(), a.sizes().end() - 2);
  const Shape batch_b(b.sizes().begin(), b.sizes().end() - 2);
  for (size_t i = 1; i <= std::min(batch_a.size(), batch_b.size()); ++i) {
    const int64_t da = batch_a[batch_a.size() - i], db = batch_b[batch_b.size() - i];
    CTXPOOL_CHECK(da == db || da == 1 || db == 1, "matmul: cannot multiply ", a.sizes(), " by ", b.sizes(),
                  ": their batch dims ", batch_a, " and ", batch_b, " do not broadcast");
  }
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape sa = batch, sb = batch;
  sa.insert(sa.end(), a.sizes().end() - 2, a.sizes().end());
  sb.insert(sb.end(), b.sizes().end() - 2, b.sizes().end());
  // expand() is a view whose backward sums the gradient over the broadcast batch dims.
  return batched_matmul(expand(a, sa), expand(b, sb));
}

}  // namespace ctxpool::ops
