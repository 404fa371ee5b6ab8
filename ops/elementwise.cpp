// Elementwise ops and their gradients. Binary ops broadcast; their backward sums the gradient back
// to each input's shape (sum_to_size).
#include <cmath>

#include "ops/kernels.h"
#include "ops/op_utils.h"

namespace ctxpool::ops {

namespace {

Tensor binary_forward(const char* name, BinaryOp op, const Tensor& a, const Tensor& b,
                      bool bool_out = false) {
  check_same(name, a, b);
  // true + true would store 2 in a bool: arithmetic on bools is refused (comparisons are fine).
  CTXPOOL_CHECK(bool_out || a.dtype() != kBool, name, ": arithmetic on bool tensors is not supported (use "
                "logical_and / logical_or / logical_not, or convert first, e.g. mask.to(kFloat32))");
  const auto binary = kernel(&Kernels::binary, name, a);
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = new_empty(shape, bool_out ? kBool : a.dtype(), a.device());
  binary(op, a, b, out);
  return out;
}

Tensor unary_forward(const char* name, UnaryOp op, const Tensor& x) {
  check_floating(name, x);
  const auto unary = kernel(&Kernels::unary, name, x);
  Tensor out = new_empty(x.sizes(), x.dtype(), x.device());
  unary(op, x, out);
  return out;
}

// The gradient g (for the broadcast output) summed back to an input's shape, if that input needs it.
Tensor reduce_grad(const LambdaNode& node, size_t i, const Tensor& g, const Shape& sizes) {
  return node.needs_input_grad(i) ? sum_to_size(g, sizes) : Tensor();
}

Tensor comparison(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  return binary_forward(name, op, a, b, /*bool_out=*/true);
}

}  // namespace

Tensor scalar_like(double value, const Tensor& x) {
  check_defined("scalar", x);
  // No silent truncation of a scalar to an integer or bool tensor's dtype.
  CTXPOOL_CHECK(is_floating(x.dtype()) || (std::isfinite(value) && value == std::trunc(value) &&
                                           (x.dtype() != kBool || value == 0 || value == 1)),
                "scalar ", value, " cannot be represented in a ", x.dtype(), " tensor without changing it; convert "
                "the tensor first (e.g. x.to(kFloat32))");
  // Filled where x lives (on a GPU: not built on the host and copied over, which waits for the device).
  Tensor out = empty({}, TensorOptions(x.dtype()).device(x.device()));
  kernel(&Kernels::fill, "scalar", out)(out, value);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", BinaryOp::Add, a, b);
  return record("add", {a, b}, out, [sa = a.sizes(), sb = b.sizes()](const Tensor& g, const LambdaNode& n) {
    return Grads{reduce_grad(n, 0, g, sa), reduce_grad(n, 1, g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", BinaryOp::Sub, a, b);
  return record("sub", {a, b}, out, [sa = a.sizes(), sb = b.sizes()](const Tensor& g, const LambdaNode& n) {
    return Grads{reduce_grad(n, 0, g, sa), n.needs_input_grad(1) ? sum_to_size(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", BinaryOp::Mul, a, b);
  return record("mul", {a, b}, out, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sa.unpack("mul"), y = sb.unpack("mul");
    return Grads{n.needs_input_grad(0) ? sum_to_size(mul(g, y), x.sizes()) : Tensor(),
                 n.needs_input_grad(1) ? sum_to_size(mul(g, x), y.sizes()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  // Integer division would truncate (PyTorch's true division gives a float) and divide by zero with
  // a crash: refused, with the way out.
  CTXPOOL_CHECK(!a.defined() || is_floating(a.dtype()), "div: expected floating-point tensors, got ", a.dtype(),
                " (integer division truncates and cannot divide by zero; convert first, e.g. x.to(kFloat32))");
  Tensor out = binary_forward("div", BinaryOp::Div, a, b);
  return record("div", {a, b}, out, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sa.unpack("div"), y = sb.unpack("div");
    // d(x/y)/dx = 1/y,  d(x/y)/dy = -x/y^2
    return Grads{n.needs_input_grad(0) ? sum_to_size(div(g, y), x.sizes()) : Tensor(),
                 n.needs_input_grad(1) ? sum_to_size(neg(div(mul(g, x), mul(y, y))), y.sizes()) : Tensor()};
  });
}

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary_forward("pow", BinaryOp::Pow, base, exponent);
  return record("pow", {base, exponent}, out,
                [sa = SavedTensor(base), sb = SavedTensor(exponent)](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sa.unpack("pow"), p = sb.unpack("pow");
    // d(x^p)/dx = p x^(p-1), taken as 0 where p = 0 (x^0 is constant, even at x = 0);
    // d(x^p)/dp = x^p log x, taken as 0 where x = 0 and p >= 0 (x^p is 0 or 1 there). PyTorch's rules.
    Tensor gx, gp;
    const Tensor zero = scalar_like(0.0, x);
    if (n.needs_input_grad(0)) {
      const Tensor d = mul(p, pow(x, sub(p, scalar_like(1.0, p))));
      gx = sum_to_size(mul(g, where(eq(p, zero), zeros_like(d), d)), x.sizes());
    }
    if (n.needs_input_grad(1)) {
      const Tensor d = mul(pow(x, p), log(x));
      gp = sum_to_size(mul(g, where(logical_and(eq(x, zero), ge(p, zero)), zeros_like(d), d)), p.sizes());
    }
    return Grads{gx, gp};
  });
}

Tensor pow(const Tensor& base, double exponent) {
  check_floating("pow", base);
  Tensor out = binary_forward("pow", BinaryOp::Pow, base, scalar_like(exponent, base));
  return record("pow", {base}, out, [sa = SavedTensor(base), exponent](const Tensor& g, const LambdaNode&) {
    const Tensor x = sa.unpack("pow");
    if (exponent == 0.0) return Grads{zeros_like(x)};
    return Grads{mul(g, mul(scalar_like(exponent, x), pow(x, exponent - 1.0)))};
  });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("maximum", BinaryOp::Maximum, a, b);
  return record("maximum", {a, b}, out, [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, const LambdaNode& n) {
    const Tensor x = sa.unpack("maximum"), y = sb.unpack("maximum");
    // PyTorch's rule: ties share the gradient equally; the smaller input gets none; where a NaN
    // makes every comparison false, both inputs get all of it.
    const Tensor share = where(eq(x, y), mul(g, scalar_like(0.5, g)), g);
    const Tensor zero = zeros_like(share);
    return Grads{n.needs_input_grad(0) ? sum_to_size(where(lt(x, y), zero, share), x.sizes()) : Tensor(),
                 n.needs_input_grad(1) ? sum_to_size(where(gt(x, y), zero, share), y.sizes()) : Tensor()};
  });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return neg(maximum(neg(a), neg(b)));
}

Tensor neg(const Tensor& x) {
  check_defined("neg", x);
  Tensor out = new_empty(x.sizes(), x.dtype(), x.device());
  if (is_floating(x.dtype())) {
    kernel(&Kernels::unary, "neg", x)(UnaryOp::Neg, x, out);
  } else {
    kernel(&Kernels::binary, "neg", x)(BinaryOp::Sub, scalar_like(0.0, x), x, out);
  }
  return record("neg", {x}, out, [](const Tensor& g, const LambdaNode&) { return Grads{neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward("exp", UnaryOp::Exp, x);
  return record("exp", {x}, out, [](const Tensor& g, const LambdaNode& n) {
    return Grads{mul(g, n.saved_output())};
  }, /*save_output=*/true);
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward("log", UnaryOp::Log, x);
  return record("log", {x}, out, [sx = SavedTensor(x)](const Tensor& g, const LambdaNode&) {
    return Grads{div(g, sx.unpack("log"))};
  });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward("sqrt", UnaryOp::Sqrt, x);
  return record("sqrt", {x}, out, [](const Tensor& g, const LambdaNode& n) {
    return Grads{div(g, mul(scalar_like(2.0, g), n.saved_output()))};
  }, true);
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = unary_forward("rsqrt", UnaryOp::Rsqrt, x);
  return record("rsqrt", {x}, out, [](const Tensor& g, const LambdaNode& n) {
    const Tensor y = n.saved_output();  // d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
    return Grads{mul(g, mul(scalar_like(-0.5, g), mul(y, mul(y, y))))};
  }, true);
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward("tanh", UnaryOp::Tanh, x);
  return record("tanh", {x}, out, [](const Tensor& g, const LambdaNode& n) {
    const Tensor y = n.saved_output();
    return Grads{mul(g, sub(scalar_like(1.0, y), mul(y, y)))};
  }, true);
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward("sigmoid", UnaryOp::Sigmoid, x);
  return record("sigmoid", {x}, out, [](const Tensor& g, const LambdaNode& n) {
    const Tensor y = n.saved_output();
    return Grads{mul(g, mul(y, sub(scalar_like(1.0, y), y)))};
  }, true);
}

namespace {
// relu's backward in one pass over memory (it was a comparison, a negation, a conversion and a
// multiply): where x <= 0 the gradient is 0; elsewhere, NaN included, g passes (PyTorch's
// threshold_backward). Differentiable in g under create_graph; its x-derivative is 0 almost everywhere.
Tensor relu_backward(const Tensor& g, const Tensor& x) {
  Tensor out = binary_forward("relu_backward", BinaryOp::ReluBackward, g, x);
  return record("relu_backward", {g, x}, out, [sx = SavedTensor(x)](const Tensor& gg, const LambdaNode&) {
    return Grads{relu_backward(gg, sx.unpack("relu_backward")), Tensor()};
  });
}
}  // namespace

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward("relu", UnaryOp::Relu, x);
  return record("relu", {x}, out, [sx = SavedTensor(x)](const Tensor& g, const LambdaNode&) {
    return Grads{relu_backward(g, sx.unpack("relu"))};
  });
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_forward("abs", UnaryOp::Abs, x);
  return record("abs", {x}, out, [sx = SavedTensor(x)](const Tensor& g, const LambdaNode&) {
    return Grads{mul(g, sign(sx.unpack("abs")))};
  });
}

Tensor sign(const Tensor& x) { return unary_forward("sign", UnaryOp::Sign, x); }

namespace {
// d gelu / dx as an op of its own, so that gelu's backward is recorded under create_graph. Its own
// derivative (gelu'') is not implemented: a second backward through it says so.
Tensor gelu_derivative(const Tensor& x, bool tanh_approx) {
  Tensor out = unary_forward("gelu_backward", tanh_approx ? UnaryOp::GeluTanhGrad : UnaryOp::GeluErfGrad, x);
  return record("gelu_backward", {x}, out, [](const Tensor&, const LambdaNode&) -> Grads {
    detail::fail("gelu_backward: double backward through gelu is not implemented");
  });
}
}  // namespace

namespace {
// g * gelu'(x), gelu's backward, in one pass over memory (instead of gelu'(x) into a temporary, then
// a multiply). Differentiable in g under create_graph; its x-derivative (gelu'') is not implemented.
Tensor gelu_backward(const Tensor& g_in, const Tensor& x, bool tanh_approx) {
  // The kernels' fast path is flat and contiguous; an expanded gradient (from a sum) is made so first.
  const Tensor g = g_in.is_contiguous() || g_in.sizes() != x.sizes() ? g_in : contiguous(g_in);
  Tensor out = binary_forward("gelu_backward", tanh_approx ? BinaryOp::GeluTanhBackward : BinaryOp::GeluErfBackward,
                              g, x);
  return record("gelu_backward", {g, x}, out,
                [sx = SavedTensor(x), tanh_approx](const Tensor& gg, const LambdaNode& n) -> Grads {
                  CTXPOOL_CHECK(!n.needs_input_grad(1), "gelu_backward: double backward through gelu is not "
                                "implemented");
                  return Grads{mul(gg, gelu_derivative(sx.unpack("gelu_backward"), tanh_approx)), Tensor()};
                });
}
}  // namespace

Tensor gelu(const Tensor& x, const std::string& approximate) {
  CTXPOOL_CHECK(approximate == "none" || approximate == "tanh",
                "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
  const bool tanh_approx = approximate == "tanh";
  Tensor out = unary_forward("gelu", tanh_approx ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x);
  return record("gelu", {x}, out, [sx = SavedTensor(x), tanh_approx](const Tensor& g, const LambdaNode&) {
    return Grads{gelu_backward(g, sx.unpack("gelu"), tanh_approx)};
  });
}

Tensor clamp(const Tensor& x, double min, double max) {
  check_floating("clamp", x);
  const auto clamp_kernel = kernel(&Kernels::clamp, "clamp", x);
  CTXPOOL_CHECK(!(min > max), "clamp: min (", min, ") is greater than max (", max, ")");
  Tensor out = new_empty(x.sizes(), x.dtype(), x.device());
  clamp_kernel(x, min, max, out);
  return record("clamp", {x}, out, [sx = SavedTensor(x), min, max](const Tensor& g, const LambdaNode&) {
    const Tensor in = sx.unpack("clamp");
    const Tensor inside = logical_and(ge(in, scalar_like(min, in)), le(in, scalar_like(max, in)));
    return Grads{mul(g, inside.to(g.dtype()))};
  });
}

Tensor eq(const Tensor& a, const Tensor& b) { return comparison("eq", BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return comparison("ne", BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return comparison("lt", BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return comparison("le", BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return comparison("gt", BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return comparison("ge", BinaryOp::Ge, a, b); }

Tensor logical_and(const Tensor& a, const Tensor& b) {
  check_same("logical_and", a, b);
  CTXPOOL_CHECK(a.dtype() == kBool, "logical_and: expected bool tensors, got ", a.dtype());
  return binary_forward("logical_and", BinaryOp::LogicalAnd, a, b, true);
}

Tensor logical_not(const Tensor& a) {
  check_defined("logical_not", a);
  const auto unary = kernel(&Kernels::unary, "logical_not", a);
  CTXPOOL_CHECK(a.dtype() == kBool, "logical_not: expected a bool tensor, got ", a.dtype());
  Tensor out = new_empty(a.sizes(), kBool, a.device());
  unary(UnaryOp::LogicalNot, a, out);
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "condition");
  check_same("where", a, b);
  const auto where_kernel = kernel(&Kernels::where, "where", a);
  CTXPOOL_CHECK(cond.dtype() == kBool, "where: the condition must be a bool tensor, got ",
                cond.dtype(), " with shape ", cond.sizes());
  CTXPOOL_CHECK(cond.device() == a.device(), "where: condition on ", cond.device(),
                " but values on ", a.device());
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  Tensor out = new_empty(shape, a.dtype(), a.device());
  where_kernel(cond, a, b, out);
  return record("where", {a, b}, out,
                [sc = SavedTensor(cond), sa = a.sizes(), sb = b.sizes()](const Tensor& g, const LambdaNode& n) {
    const Tensor c = sc.unpack("where");
    const Tensor zero = scalar_like(0.0, g);
    return Grads{n.needs_input_grad(0) ? sum_to_size(where(c, g, zero), sa) : Tensor(),
                 n.needs_input_grad(1) ? sum_to_size(where(c, zero, g), sb) : Tensor()};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask, "mask");
  CTXPOOL_CHECK(mask.dtype() == kBool, "masked_fill: the mask must be a bool tensor, got ", mask.dtype());
  const Shape shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
  CTXPOOL_CHECK(shape == x.sizes(), "masked_fill: mask of shape ", mask.sizes(),
                " must broadcast to the input's shape ", x.sizes());
  return where(mask, scalar_like(value, x), x);
}

}  // namespace ctxpool::ops
