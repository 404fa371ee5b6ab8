"""The cases of tests/golden/ops.safetensors (see golden_ops.py): every op in ops/ops.h on ordinary
inputs (broadcast, non-contiguous, 0-d, empty) and on edge values (NaN, +-inf, +-0, ties).

Conv, pooling, batch norm and ContextPool have files of their own (make_golden.py)."""
import math

INF, NAN = math.inf, math.nan

UNARY = ["neg", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "abs", "sign"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]


def add_elementwise(c, f64, i64, b, randn):
    edge = f64(-INF, -3.0, -1.0, -0.0, 0.0, 0.5, 2.0, INF, NAN)
    positive = randn(3, 4).abs() + 0.5
    for op in UNARY:
        x = positive if op in ("log", "sqrt", "rsqrt") else randn(3, 4)
        c.add(op, "[3, 4]", {"x": x})
        c.add(op, "transposed [4, 3]", {"x": x.clone()}, transposed=["x"])
        c.add(op, "0-d", {"x": positive[0, 0].clone()})
        c.add(op, "empty [0, 3]", {"x": randn(0, 3)})
        c.add(op, "edge values", {"x": edge}, f32=op != "exp")
    for approximate in ("none", "tanh"):
        c.add("gelu", f"{approximate} [3, 4]", {"x": randn(3, 4) * 3}, {"approximate": approximate})
        c.add("gelu", f"{approximate} edge values", {"x": f64(-INF, -30.0, -0.0, 0.0, 30.0, INF, NAN)},
              {"approximate": approximate})
    c.add("clamp", "[3, 4]", {"x": randn(3, 4)}, {"min": -0.5, "max": 0.7})
    c.add("clamp", "at the bounds, inf, NaN", {"x": f64(-1.0, -0.5, 0.0, 0.7, 2.0, -INF, INF, NAN)},
          {"min": -0.5, "max": 0.7})
    c.add("scalar_like", "float64", {"x": randn(2)}, {"value": -2.5}, grad=[])
    c.add("scalar_like", "int64", {"x": i64(1, 2)}, {"value": 7.0})

    for op in BINARY:
        c.add(op, "broadcast [3, 1] by [4]", {"a": randn(3, 1), "b": randn(4) + 3.0})
        c.add(op, "transposed by 0-d", {"a": randn(4, 3), "b": randn(()) + 3.0}, transposed=["a"])
        c.add(op, "empty", {"a": randn(0, 4), "b": randn(4)})
        c.add(op, "edge pairs", {"a": f64(INF, INF, -INF, 0.0, 0.0, 1.0, -1.0, NAN, 2.0, 0.0, 1.5),
                                 "b": f64(INF, -INF, 1.0, 0.0, INF, 0.0, 0.0, 1.0, NAN, -0.0, 1.5)})
    for op in ("add", "sub", "mul", "maximum", "minimum"):
        c.add(op, "int64", {"a": i64(7, -7, 0, 5), "b": i64(2, 2, -3, 5)})
    c.add("pow", "broadcast", {"base": randn(3, 4).abs() + 0.1, "exponent": randn(4)})
    c.add("pow", "base 0, exponent 0, negative base", {"base": f64(0.0, 0.0, 0.0, -2.0, -2.0, 2.0, INF, 1.0),
                                                        "exponent": f64(0.0, 2.0, 0.5, 3.0, 0.5, -1.0, -1.0, NAN)})
    for exponent in (2.0, 0.5, -1.0, 0.0, 3.0, -0.5):
        c.add("pow_scalar", f"exponent {exponent}", {"x": f64(0.0, 1.5, 2.0, 0.25, INF)}, {"exponent": exponent})
    c.add("pow_scalar", "negative base, integer exponent", {"x": f64(-2.0, -0.5, -1.0)}, {"exponent": 3.0})

    nan_float = {"a": f64(1.0, NAN, 2.0, -INF, 0.0, NAN), "b": f64(1.0, 1.0, 3.0, -INF, -0.0, NAN)}
    for op in COMPARE:
        c.add(op, "broadcast", {"a": randn(3, 1).round(), "b": randn(4).round()})
        c.add(op, "NaN, inf, signed zero", nan_float)
        c.add(op, "int64", {"a": i64(1, 2, 3), "b": i64(2, 2, 2)})
    c.add("eq", "bool", {"a": b(True, False, True), "b": b(True, True, False)})
    c.add("logical_and", "broadcast", {"a": b(True, False, True).reshape(3, 1), "b": b(True, False)})
    c.add("logical_not", "bool", {"x": b(True, False, True)})
    c.add("where", "broadcast", {"cond": b(True, False, True, False).reshape(2, 2), "a": randn(2, 1),
                                  "b": randn(2)})
    c.add("where", "NaN in the branch not taken", {"cond": b(True, False), "a": f64(1.0, NAN),
                                                   "b": f64(INF, 2.0)})
    c.add("masked_fill", "broadcast mask", {"x": randn(3, 4), "mask": b(True, False, False, True)},
          {"value": -1e9})
    c.add("masked_fill", "-inf", {"x": randn(2, 3), "mask": b(False, True, True).reshape(1, 3)},
          {"value": -INF})


def add_reductions(c, f64, i64, b, randn):
    x = randn(2, 3, 4)
    for op in ("sum", "mean"):
        c.add(op, "[2, 3, 4]", {"x": x})
        c.add(op, "transposed", {"x": randn(4, 3)}, transposed=["x"])
        c.add(op, "0-d", {"x": randn(())})
        c.add(op, "empty", {"x": randn(0, 3)})
        c.add(op, "inf and NaN", {"x": f64(1.0, INF, 2.0)})
        for dims, keepdim in (([0], False), ([-1], True), ([0, 2], False), ([1], True)):
            c.add(f"{op}_dims", f"dims {dims} keepdim {keepdim}", {"x": x}, {"dims": dims, "keepdim": keepdim})
        c.add(f"{op}_dims", "over an empty dim", {"x": randn(2, 0)}, {"dims": [1], "keepdim": False})
    c.add("sum", "int64", {"x": i64(3, -4, 10)})
    c.add("sum_dims", "int64", {"x": i64(1, 2, 3, 4).reshape(2, 2)}, {"dims": [0], "keepdim": False})
    for correction in (0, 1):
        c.add("var", f"correction {correction}", {"x": x}, {"dims": [1], "keepdim": False, "correction": correction})
        c.add("var", f"correction {correction} dims [0, 2] keepdim", {"x": x},
              {"dims": [0, 2], "keepdim": True, "correction": correction})
    c.add("var", "one element, correction 1", {"x": randn(3, 1)}, {"dims": [1], "keepdim": False, "correction": 1})
    c.add("var", "constant rows", {"x": f64(2.0, 2.0, 2.0, -1.0, -1.0, -1.0).reshape(2, 3)},
          {"dims": [1], "keepdim": False, "correction": 1})

    ties = f64(1.0, 3.0, -2.0, 3.0, 0.5, 3.0)
    for op in ("max", "min"):
        c.add(op, "[3, 4]", {"x": randn(3, 4)})
        c.add(op, "0-d", {"x": randn(())})
        c.add(op, "ties split the gradient", {"x": ties if op == "max" else -ties})
        c.add(op, "NaN wins", {"x": f64(1.0, NAN, 5.0, NAN)})
        c.add(op, "inf", {"x": f64(-INF, INF, 2.0)})
        c.add(op, "int64", {"x": i64(4, -2, 9, 9)})
        c.add(op, "empty is an error", {"x": randn(0)}, error=True)
        c.add(f"{op}_dim", "dim 1", {"x": randn(3, 4)}, {"dim": 1, "keepdim": False})
        c.add(f"{op}_dim", "dim 0 keepdim, transposed", {"x": randn(4, 3)}, {"dim": 0, "keepdim": True},
              transposed=["x"])
        c.add(f"{op}_dim", "ties: the first index", {"x": (ties if op == "max" else -ties).reshape(2, 3)},
              {"dim": 1, "keepdim": False})
        c.add(f"{op}_dim", "NaN wins", {"x": f64(1.0, NAN, 5.0, 2.0, -INF, 0.0).reshape(2, 3)},
              {"dim": 1, "keepdim": False})
    c.add("argmax", "dim -1", {"x": randn(3, 5)}, {"dim": -1, "keepdim": False})
    c.add("argmax", "ties and NaN", {"x": f64(2.0, 2.0, 1.0, 0.0, NAN, 7.0).reshape(2, 3)}, {"dim": 1, "keepdim": True})
    c.add("sum_to_size", "[2, 3, 4] to [3, 1]", {"x": x}, {"sizes": [3, 1]})
    c.add("sum_to_size", "[2, 3, 4] to [1, 3, 4]", {"x": x}, {"sizes": [1, 3, 4]})


def add_matmul(c, f64, i64, b, randn):
    for description, sa, sb in (("vector . vector", (4,), (4,)), ("vector by matrix", (4,), (4, 3)),
                                ("matrix by vector", (3, 4), (4,)), ("matrix by matrix", (3, 4), (4, 5)),
                                ("batch broadcast", (2, 1, 3, 4), (5, 4, 2)), ("batched by vector", (2, 3, 4), (4,)),
                                ("inner size 0", (3, 0), (0, 2)), ("empty rows", (0, 4), (4, 2))):
        c.add("matmul", description, {"a": randn(*sa), "b": randn(*sb)})
    c.add("matmul", "both transposed", {"a": randn(4, 3), "b": randn(5, 4)}, transposed=["a", "b"])
    c.add("matmul", "inf and NaN", {"a": f64(1.0, INF, 0.0, NAN).reshape(2, 2), "b": f64(1.0, 0.0, 2.0, 1.0).reshape(2, 2)},
          grad=[])
    c.add("matmul", "shape mismatch is an error", {"a": randn(2, 3, 4), "b": randn(3, 4, 5)}, error=True)


def add_shapes(c, f64, i64, b, randn):
    x = randn(2, 3, 4)
    c.add("view", "[-1, 4]", {"x": x}, {"sizes": [-1, 4]})
    c.add("view", "incompatible strides is an error", {"x": randn(4, 3)}, {"sizes": [12]}, transposed=["x"],
          error=True)
    c.add("reshape", "of a transposed tensor (a copy)", {"x": randn(4, 3)}, {"sizes": [2, 6]}, transposed=["x"])
    c.add("reshape", "0-d to [1, 1]", {"x": randn(())}, {"sizes": [1, 1]})
    c.add("reshape", "empty", {"x": randn(0, 4)}, {"sizes": [2, 0, 4]})
    c.add("permute", "[2, 0, 1]", {"x": x}, {"dims": [2, 0, 1]})
    c.add("transpose", "0 and -1", {"x": x}, {"dim0": 0, "dim1": -1})
    c.add("transpose", "of a 0-d tensor, dims out of range", {"x": randn(())}, {"dim0": 3, "dim1": 4}, error=True)
    c.add("narrow", "dim 2", {"x": x}, {"dim": 2, "start": 1, "length": 2})
    c.add("slice", "step 2", {"x": x}, {"dim": 2, "start": 0, "end": 4, "step": 2})
    c.add("slice", "end past the size", {"x": x}, {"dim": 1, "start": 1, "end": 100, "step": 1})
    c.add("select", "negative index", {"x": x}, {"dim": 1, "index": -1})
    c.add("expand", "[3, 1] to [2, 3, 4]", {"x": randn(3, 1)}, {"sizes": [2, -1, 4]})
    c.add("expand", "0-d", {"x": randn(())}, {"sizes": [3]})
    c.add("squeeze", "dim 1", {"x": randn(2, 1, 3)}, {"dim": 1})
    c.add("squeeze", "a dim not of size 1", {"x": randn(2, 3)}, {"dim": 0})
    c.add("squeeze", "0-d, dim out of range", {"x": randn(())}, {"dim": 5}, error=True)
    c.add("squeeze_all", "[1, 2, 1, 3]", {"x": randn(1, 2, 1, 3)})
    c.add("unsqueeze", "dim -1", {"x": randn(2, 3)}, {"dim": -1})
    c.add("unsqueeze", "0-d", {"x": randn(())}, {"dim": 0})
    c.add("flatten", "dims 1..2", {"x": x}, {"start_dim": 1, "end_dim": 2})
    c.add("flatten", "transposed", {"x": randn(4, 3)}, {"start_dim": 0, "end_dim": -1}, transposed=["x"])
    c.add("contiguous", "transposed", {"x": randn(4, 3)}, transposed=["x"])
    c.add("clone", "with NaN", {"x": f64(1.0, NAN, -INF)})
    c.add("cat", "dim 1 with an empty piece", {"x0": randn(2, 1), "x1": randn(2, 0), "x2": randn(2, 3)}, {"dim": 1})
    c.add("cat", "transposed pieces, dim 0", {"x0": randn(3, 2), "x1": randn(3, 4)}, {"dim": 0},
          transposed=["x0", "x1"])
    c.add("cat", "mismatched sizes is an error", {"x0": randn(2, 3), "x1": randn(3, 4)}, {"dim": 0}, error=True)
    c.add("stack", "dim -1", {"x0": randn(2, 3), "x1": randn(2, 3)}, {"dim": -1})
    c.add("split", "size 2 along dim 1", {"x": randn(2, 5)}, {"split_size": 2, "dim": 1})
    c.add("split_sizes", "[1, 3]", {"x": randn(4, 2)}, {"sizes": [1, 3], "dim": 0})
    c.add("chunk", "3 chunks of 7", {"x": randn(7, 2)}, {"chunks": 3, "dim": 0})
    c.add("to_dtype", "float64 to int64 truncates toward zero", {"x": f64(-2.7, -0.5, 0.5, 2.7, 3.0)},
          {"dtype": "int64"}, f32=False)
    c.add("to_dtype", "float64 to bool: NaN and -0.0", {"x": f64(0.0, -0.0, NAN, 0.1, -INF)}, {"dtype": "bool"},
          f32=False)
    c.add("to_dtype", "float64 to float32", {"x": randn(3)}, {"dtype": "float32"}, f32=False)
    c.add("to_dtype", "int64 to float64", {"x": i64(-3, 0, 5)}, {"dtype": "float64"}, f32=False)
    c.add("to_dtype", "bool to int64", {"x": b(True, False)}, {"dtype": "int64"}, f32=False)
    c.add("to_device", "cpu to cpu", {"x": randn(2, 2)})


def add_indexing(c, f64, i64, b, randn):
    c.add("embedding", "repeated rows", {"weight": randn(5, 3), "indices": i64(0, 4, 0, 2, 0, 4).reshape(2, 3)})
    c.add("embedding", "index out of range is an error", {"weight": randn(5, 3), "indices": i64(5)}, error=True)
    c.add("gather", "dim 1", {"x": randn(3, 4), "index": i64(0, 3, 3, 1, 2, 0).reshape(3, 2)}, {"dim": 1})
    c.add("gather", "dim 0", {"x": randn(3, 4), "index": i64(2, 0, 1, 1).reshape(1, 4)}, {"dim": 0})
    c.add("gather", "index out of range is an error", {"x": randn(3, 4), "index": i64(4).reshape(1, 1)}, {"dim": 1},
          error=True)
    c.add("scatter_add", "dim 0 with duplicates", {"x": randn(3, 2), "index": i64(0, 2, 0, 0).reshape(2, 2),
                                                   "src": randn(2, 2)}, {"dim": 0})
    c.add("scatter_add", "dim 1", {"x": randn(2, 4), "index": i64(3, 1, 1, 0, 0, 2).reshape(2, 3),
                                   "src": randn(2, 3)}, {"dim": 1})
    c.add("one_hot", "float32", {"indices": i64(0, 2, 1, 2)}, {"num_classes": 3, "dtype": "float32"}, f32=False)
    c.add("one_hot", "int64, [2, 2]", {"indices": i64(0, 3, 1, 1).reshape(2, 2)},
          {"num_classes": 4, "dtype": "int64"}, f32=False)


def add_functional(c, f64, i64, b, randn):
    for op in ("softmax", "log_softmax"):
        c.add(op, "dim -1", {"x": randn(3, 5) * 3}, {"dim": -1})
        c.add(op, "dim 0, transposed", {"x": randn(5, 3)}, {"dim": 0}, transposed=["x"])
        c.add(op, "large values", {"x": f64(1000.0, 1001.0, -1000.0, 0.0).reshape(2, 2)}, {"dim": 1})
        c.add(op, "-inf entries (masked)", {"x": f64(-INF, 1.0, 2.0, -INF, 0.5, -INF).reshape(2, 3)}, {"dim": 1})
        c.add(op, "a row of -inf gives NaN", {"x": f64(-INF, -INF, 1.0, 2.0).reshape(2, 2)}, {"dim": 1})
        c.add(op, "+inf and NaN", {"x": f64(INF, 1.0, NAN, 0.0).reshape(2, 2)}, {"dim": 1})
        c.add(op, "empty rows", {"x": randn(0, 4)}, {"dim": 1})
    c.add("layer_norm", "weight and bias", {"x": randn(2, 3, 4), "weight": randn(4), "bias": randn(4)},
          {"normalized_shape": [4], "eps": 1e-5})
    c.add("layer_norm", "two normalised dims, no bias", {"x": randn(2, 3, 4), "weight": randn(3, 4)},
          {"normalized_shape": [3, 4], "eps": 1e-5})
    c.add("layer_norm", "no affine, transposed", {"x": randn(4, 3)}, {"normalized_shape": [4], "eps": 1e-5},
          transposed=["x"])
    c.add("layer_norm", "constant rows", {"x": f64(3.0, 3.0, 3.0, 1.0, 2.0, 3.0).reshape(2, 3), "weight": randn(3),
                                          "bias": randn(3)}, {"normalized_shape": [3], "eps": 1e-5})
    c.add("layer_norm", "zero rows", {"x": randn(0, 4), "weight": randn(4), "bias": randn(4)},
          {"normalized_shape": [4], "eps": 1e-5})
    c.add("dropout", "p = 0 while training", {"x": randn(3, 4)}, {"p": 0.0, "training": True})
    c.add("dropout", "evaluation", {"x": randn(3, 4)}, {"p": 0.5, "training": False})
    c.add("dropout", "p = 1 while training", {"x": randn(3, 4)}, {"p": 1.0, "training": True})
    for causal in (False, True):
        c.add("scaled_dot_product_attention", f"causal {causal}", {"q": randn(2, 5, 4), "k": randn(2, 5, 4),
              "v": randn(2, 5, 3)}, {"causal": causal, "scale": -1.0})
    c.add("scaled_dot_product_attention", "S != T, scale 0.3, heads", {"q": randn(2, 2, 3, 4), "k": randn(2, 2, 6, 4),
          "v": randn(2, 2, 6, 2)}, {"causal": False, "scale": 0.3})
    for window in (1, 3, 9):
        c.add("local_attention", f"window {window}", {"q": randn(2, 6, 4), "k": randn(2, 6, 4), "v": randn(2, 6, 3)},
              {"window": window, "scale": -1.0})
    geometry = {"kernel_size": [2, 3], "stride": [2, 1], "padding": [1, 1], "dilation": [1, 2]}
    c.add("im2col2d", "stride, padding, dilation", {"x": randn(2, 3, 5, 6)}, geometry)
    c.add("col2im2d", "the adjoint", {"cols": randn(2, 18, 3 * 4)}, dict(geometry, output_size=[5, 6]))
    logits, target = randn(5, 4), i64(1, 0, 3, 3, 2)
    for reduction in ("mean", "sum", "none"):
        c.add("cross_entropy", reduction, {"logits": logits, "target": target},
              {"ignore_index": -100, "reduction": reduction})
        c.add("cross_entropy", f"{reduction}, ignored targets", {"logits": logits, "target": i64(1, -1, 3, -1, 2)},
              {"ignore_index": -1, "reduction": reduction})
        c.add("cross_entropy", f"{reduction}, every target ignored", {"logits": logits, "target": i64(-1, -1, -1, -1, -1)},
              {"ignore_index": -1, "reduction": reduction})
    c.add("cross_entropy", "large logits", {"logits": f64(1000.0, -1000.0, 0.0, 50.0).reshape(2, 2),
                                            "target": i64(1, 0)}, {"ignore_index": -100, "reduction": "mean"})
    c.add("cross_entropy", "target out of range is an error", {"logits": randn(2, 3), "target": i64(0, 3)},
          {"ignore_index": -100, "reduction": "mean"}, error=True)


def add_updates(c, f64, i64, b, randn):
    adamw = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}
    for step in (1, 7):
        c.add("adamw_update_", f"step {step}", {"p": randn(3, 4), "grad": randn(3, 4), "m": randn(3, 4) * 0.1,
              "v": randn(3, 4).abs() * 0.01}, dict(adamw, step=step), grad=[])
    c.add("adamw_update_", "zero gradient and state", {"p": randn(5), "grad": f64(0, 0, 0, 0, 0),
          "m": f64(0, 0, 0, 0, 0), "v": f64(0, 0, 0, 0, 0)}, dict(adamw, step=1), grad=[])
    for momentum, nesterov, first in ((0.0, False, False), (0.9, False, True), (0.9, False, False), (0.9, True, False)):
        c.add("sgd_update_", f"momentum {momentum} nesterov {nesterov} first {first}",
              {"p": randn(3, 4), "grad": randn(3, 4), "buf": randn(3, 4)},
              {"lr": 0.1, "momentum": momentum, "weight_decay": 0.01, "nesterov": nesterov, "first": first}, grad=[])
    c.add("fill_", "NaN", {"x": randn(2, 3)}, {"value": NAN}, grad=[])
    c.add("copy_", "broadcast source", {"dst": randn(3, 4), "src": randn(4)}, grad=[])
    c.add("copy_", "transposed source", {"dst": randn(3, 4), "src": randn(4, 3)}, grad=[], transposed=["src"])


def add_all(c, f64, i64, b, randn):
    for group in (add_elementwise, add_reductions, add_matmul, add_shapes, add_indexing, add_functional, add_updates):
        group(c, f64, i64, b, randn)
