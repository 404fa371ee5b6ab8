"""Writes PyTorch golden values for ctxpool's ops tests (tests/ops/test_golden.cpp).

Command line (from the repo root; needs PyTorch, which CI does not):
    /usr/bin/python3 bench/reference/make_golden.py [--out tests/golden]

Writes, in float64:
  context_pool1d.safetensors  inputs case<i>.{x, a, b}, upstream gradient case<i>.gy, outputs
                              case<i>.{y, gx, ga, gb}; metadata "case<i>" = the resolved options (JSON).
  conv1d.safetensors          inputs case<i>.{x, weight, bias (if any)}, case<i>.gy, outputs
                              case<i>.{y, gx, gweight, gbias (if any)}; metadata "case<i>" =
                              {"pad_left", "pad_right", "dilation", "bias"} (JSON).
  conv2d.safetensors          torch.nn.functional.conv2d: inputs case<i>.{x, weight, bias (if any)},
                              case<i>.gy, outputs case<i>.{y, gx, gweight, gbias (if any)}; metadata
                              "case<i>" = {"stride", "padding", "dilation" ([h, w] each), "groups",
                              "bias"} (JSON).
  pool.safetensors            max_pool2d, avg_pool2d and adaptive_avg_pool2d: case<i>.{x, gy, y, gx}
                              (and indices, as float64, for max_pool2d); metadata "case<i>" = {"op",
                              and its kernel, stride (null: the kernel), padding, dilation, ceil_mode,
                              count_include_pad or output_size} (JSON).
  ops.safetensors             every other op in ops/ops.h, edge values included: see golden_ops.py
                              and golden_op_cases.py (float64, float32, int64 and bool tensors).
  batch_norm.safetensors      inputs case<i>.{x, weight, bias, running_mean, running_var} (the last
                              four when used), case<i>.gy, outputs case<i>.{y, gx, gweight, gbias} and
                              the running statistics after the call, case<i>.{running_mean_out,
                              running_var_out}; metadata "case<i>" = {"training", "momentum", "eps",
                              "affine", "running"} (JSON).
Each also carries metadata "case<i>.description", "cases" (the count) and "generator". Seeded: two
runs give identical bytes (with the same torch version). The safetensors format is written by
hand (numpy + json + struct): an 8-byte little-endian header length, a JSON header padded with
spaces to a multiple of 8 bytes, then the tensors' bytes in sorted-name order.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from context_pool import context_pool1d, context_pool2d, resolve_options  # noqa: E402
from golden_ops import all_cases  # noqa: E402

GENERATOR = f"bench/reference/make_golden.py, torch {torch.__version__}"


# torch dtype -> (safetensors dtype, little-endian numpy type)
SAFETENSORS_DTYPES = {torch.float64: ("F64", "<f8"), torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8"),
                      torch.bool: ("BOOL", "|b1")}


def write_safetensors(path, tensors, metadata):
    """tensors: {name: float64, float32, int64 or bool torch tensor}; metadata: {str: str}."""
    names = sorted(tensors)
    header, chunks, offset = {}, [], 0
    for name in names:
        st_dtype, np_dtype = SAFETENSORS_DTYPES[tensors[name].dtype]
        data = tensors[name].detach().cpu().contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": st_dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def grads(output, inputs, grad_output):
    """d(output . grad_output)/d(input) for each input; zeros where the output does not depend on it."""
    got = torch.autograd.grad(output, inputs, grad_output, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, got)]


def randn(*shape, std=1.0):
    return torch.randn(*shape, dtype=torch.float64) * std


# ---- context_pool1d ----

# (description, B, N, d, options, b override). Options not given take ContextPool1dOptions' defaults.
CONTEXT_POOL_CASES = [
    ("causal K=3 full", 2, 7, 4, dict(window=3), None),
    ("bidirectional K=2", 2, 7, 4, dict(window=2, causal=False), None),
    ("K=16 larger than N=5", 2, 5, 3, dict(window=16), None),
    ("N=1", 2, 1, 3, dict(window=3), None),
    ("s near s_min (b=-8)", 1, 7, 3, dict(window=3, causal=False), -8.0),
    ("s near s_max (b=+8)", 1, 7, 3, dict(window=3, causal=False), 8.0),
    ("s_min == s_max", 2, 7, 3, dict(window=3, s_min=1.25, s_max=1.25), None),
    ("weights_only", 2, 7, 4, dict(window=3, mode="weights_only"), None),
    ("uniform", 2, 7, 4, dict(window=2, causal=False, mode="uniform"), None),
    ("weights_only, custom s_fixed", 2, 7, 3, dict(window=3, mode="weights_only", s_fixed=0.8), None),
    ("custom eps", 2, 6, 3, dict(window=2, eps=0.25), None),
]


def context_pool_case(batch, n, d, opts, b_value):
    window = opts["window"]
    s_min = opts.get("s_min", 0.5)
    s_max, s_fixed = resolve_options(window, s_min, opts.get("s_max"), opts.get("s_fixed"))
    options = {"window": window, "causal": opts.get("causal", True), "s_min": s_min, "s_max": s_max,
               "eps": opts.get("eps", 1e-6), "mode": opts.get("mode", "full"), "s_fixed": s_fixed}
    x = randn(batch, n, d).requires_grad_()
    a = randn(batch, n, std=1.5).requires_grad_()
    b = (randn(batch, n, std=1.5) if b_value is None
         else torch.full((batch, n), b_value, dtype=torch.float64)).requires_grad_()
    gy = randn(batch, n, d)
    y = context_pool1d(x, a, b, **options)
    gx, ga, gb = grads(y, [x, a, b], gy)
    tensors = {"x": x, "a": a, "b": b, "gy": gy, "y": y, "gx": gx, "ga": ga, "gb": gb}
    return tensors, options


# ---- context_pool2d ----

# (description, B, H, W, d, options, b override)
CONTEXT_POOL2D_CASES = [
    ("K=1 stride 1", 2, 4, 5, 3, dict(window=1), None),
    ("K=2 stride 2 (downsampling)", 2, 5, 6, 3, dict(window=2, stride=2), None),
    ("K=1 stride 3", 1, 7, 5, 2, dict(window=1, stride=3), None),
    ("K=4 beyond a 3x2 image", 2, 3, 2, 2, dict(window=4), None),
    ("s near s_max (b=+8)", 1, 4, 4, 2, dict(window=2), 8.0),
    ("weights_only", 2, 4, 4, 3, dict(window=1, mode="weights_only"), None),
    ("uniform, stride 2", 2, 5, 5, 2, dict(window=1, stride=2, mode="uniform"), None),
    ("custom eps", 1, 4, 3, 2, dict(window=1, eps=0.25), None),
]


def context_pool2d_case(batch, h, w, d, opts, b_value):
    window, stride = opts["window"], opts.get("stride", 1)
    s_min = opts.get("s_min", 0.5)
    s_max, s_fixed = resolve_options(window, s_min, opts.get("s_max"), opts.get("s_fixed"))
    options = {"window": window, "stride": stride, "s_min": s_min, "s_max": s_max, "eps": opts.get("eps", 1e-6),
               "mode": opts.get("mode", "full"), "s_fixed": s_fixed}
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    x = randn(batch, h, w, d).requires_grad_()
    a = randn(batch, h, w, std=1.5).requires_grad_()
    b = (randn(batch, ho, wo, std=1.5) if b_value is None
         else torch.full((batch, ho, wo), b_value, dtype=torch.float64)).requires_grad_()
    gy = randn(batch, ho, wo, d)
    y = context_pool2d(x, a, b, **options)
    gx, ga, gb = grads(y, [x, a, b], gy)
    tensors = {"x": x, "a": a, "b": b, "gy": gy, "y": y, "gx": gx, "ga": ga, "gb": gb}
    return tensors, options


# ---- conv1d ----

# (description, B, C_in, C_out, L, kernel, pad_left, pad_right, dilation, bias)
CONV1D_CASES = [
    ("causal k=3", 2, 3, 4, 8, 3, 2, 0, 1, True),
    ("padding on both sides", 2, 3, 2, 7, 3, 1, 2, 1, True),
    ("dilation 2, causal", 2, 2, 3, 9, 3, 4, 0, 2, True),
    ("no bias", 1, 3, 2, 6, 2, 0, 1, 1, False),
    ("kernel 1", 2, 4, 3, 5, 1, 0, 0, 1, True),
]


def conv1d_case(batch, c_in, c_out, length, kernel, pad_left, pad_right, dilation, has_bias):
    x = randn(batch, c_in, length).requires_grad_()
    weight = randn(c_out, c_in, kernel, std=0.5).requires_grad_()
    bias = randn(c_out).requires_grad_() if has_bias else None
    y = F.conv1d(F.pad(x, (pad_left, pad_right)), weight, bias, dilation=dilation)
    gy = randn(*y.shape)
    inputs = [x, weight] + ([bias] if has_bias else [])
    tensors = {"x": x, "weight": weight, "gy": gy, "y": y}
    for name, g in zip(["gx", "gweight", "gbias"], grads(y, inputs, gy)):
        tensors[name] = g
    if has_bias:
        tensors["bias"] = bias
    options = {"pad_left": pad_left, "pad_right": pad_right, "dilation": dilation, "bias": has_bias}
    return tensors, options


# ---- conv2d ----

# (description, x shape [B, C_in, H, W], C_out, kernel, stride, padding, dilation, groups, bias)
CONV2D_CASES = [
    ("3x3 padding 1", (2, 3, 6, 5), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ("stride 2, non-square kernel", (2, 2, 7, 8), 3, (3, 2), (2, 2), (1, 0), (1, 1), 1, True),
    ("dilation 2, uneven stride", (1, 3, 9, 8), 2, (3, 3), (1, 2), (2, 1), (2, 1), 1, True),
    ("groups 2, no bias", (2, 4, 6, 6), 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, False),
    ("depthwise", (2, 3, 6, 7), 3, (3, 3), (2, 1), (1, 1), (1, 1), 3, True),
    ("1x1", (2, 4, 5, 3), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1, True),
    ("patches: kernel 4 stride 4", (2, 1, 8, 9), 5, (4, 4), (4, 4), (0, 0), (1, 1), 1, True),
]


def conv2d_case(x_shape, c_out, kernel, stride, padding, dilation, groups, has_bias):
    x = randn(*x_shape).requires_grad_()
    weight = randn(c_out, x_shape[1] // groups, *kernel, std=0.5).requires_grad_()
    bias = randn(c_out).requires_grad_() if has_bias else None
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
    gy = randn(*y.shape)
    inputs = [x, weight] + ([bias] if has_bias else [])
    tensors = {"x": x, "weight": weight, "gy": gy, "y": y}
    for name, g in zip(["gx", "gweight", "gbias"], grads(y, inputs, gy)):
        tensors[name] = g
    if has_bias:
        tensors["bias"] = bias
    options = {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": groups,
               "bias": has_bias}
    return tensors, options


# ---- 2-D pooling ----

# (description, op, input shape, options). Options not given take the op's defaults (stride None = kernel).
POOL_CASES = [
    ("max 2x2", "max_pool2d", (2, 3, 6, 6), dict(kernel=[2, 2])),
    ("max 3x3 stride 2 padding 1", "max_pool2d", (2, 2, 7, 7), dict(kernel=[3, 3], stride=[2, 2], padding=[1, 1])),
    ("max rectangular, dilated", "max_pool2d", (1, 2, 9, 8),
     dict(kernel=[3, 2], stride=[1, 2], padding=[1, 1], dilation=[2, 1])),
    ("max ceil_mode", "max_pool2d", (2, 2, 7, 6), dict(kernel=[3, 3], stride=[2, 2], padding=[1, 0], ceil_mode=True)),
    ("max unbatched [C, H, W]", "max_pool2d", (3, 5, 6), dict(kernel=[2, 3], stride=[1, 1], padding=[1, 1])),
    ("avg 2x2", "avg_pool2d", (2, 3, 6, 6), dict(kernel=[2, 2])),
    ("avg 3x3 stride 2 padding 1", "avg_pool2d", (2, 2, 7, 7), dict(kernel=[3, 3], stride=[2, 2], padding=[1, 1])),
    ("avg padding not counted", "avg_pool2d", (2, 2, 7, 7),
     dict(kernel=[3, 3], stride=[2, 2], padding=[1, 1], count_include_pad=False)),
    ("avg ceil_mode", "avg_pool2d", (1, 2, 7, 6), dict(kernel=[3, 2], stride=[2, 2], padding=[1, 1], ceil_mode=True)),
    ("avg ceil_mode, padding not counted", "avg_pool2d", (1, 2, 7, 6),
     dict(kernel=[3, 2], stride=[2, 2], padding=[1, 1], ceil_mode=True, count_include_pad=False)),
    ("avg unbatched, rectangular", "avg_pool2d", (3, 5, 7), dict(kernel=[2, 3], stride=[1, 2], padding=[0, 1])),
    ("adaptive 7x5 -> 3x2", "adaptive_avg_pool2d", (2, 3, 7, 5), dict(output_size=[3, 2])),
    ("adaptive global", "adaptive_avg_pool2d", (2, 3, 5, 5), dict(output_size=[1, 1])),
    ("adaptive upsampling 3x4 -> 5x6", "adaptive_avg_pool2d", (1, 2, 3, 4), dict(output_size=[5, 6])),
    ("adaptive unbatched", "adaptive_avg_pool2d", (3, 6, 6), dict(output_size=[4, 3])),
]


def pool_case(op, shape, opts):
    options = {"op": op}
    x = randn(*shape).requires_grad_()
    tensors = {"x": x}
    if op == "adaptive_avg_pool2d":
        options["output_size"] = opts["output_size"]
        y = F.adaptive_avg_pool2d(x, opts["output_size"])
    else:
        options.update(kernel=opts["kernel"], stride=opts.get("stride"), padding=opts.get("padding", [0, 0]),
                       ceil_mode=opts.get("ceil_mode", False))
        common = (options["kernel"], options["stride"], options["padding"])
        if op == "max_pool2d":
            options["dilation"] = opts.get("dilation", [1, 1])
            y, indices = F.max_pool2d(x, *common, dilation=options["dilation"], ceil_mode=options["ceil_mode"],
                                      return_indices=True)
            tensors["indices"] = indices.to(torch.float64)
        else:
            options["count_include_pad"] = opts.get("count_include_pad", True)
            y = F.avg_pool2d(x, *common, ceil_mode=options["ceil_mode"],
                             count_include_pad=options["count_include_pad"])
    gy = randn(*y.shape)
    (gx,) = grads(y, [x], gy)
    tensors.update(y=y, gy=gy, gx=gx)
    return tensors, options


# ---- batch_norm ----

# (description, input shape, training, momentum, eps, affine, running stats)
BATCH_NORM_CASES = [
    ("training [B, C, H, W]", (4, 3, 5, 5), True, 0.1, 1e-5, True, True),
    ("training, momentum 0.3, eps 1e-3", (3, 2, 4, 3), True, 0.3, 1e-3, True, True),
    ("training [B, C], no running stats", (8, 5), True, 0.1, 1e-5, True, False),
    ("training [B, C, L], no affine", (4, 3, 6), True, 0.1, 1e-5, False, True),
    ("evaluation [B, C, H, W]", (3, 3, 4, 4), False, 0.1, 1e-5, True, True),
    ("evaluation [B, C], no affine", (6, 4), False, 0.1, 1e-5, False, True),
]


def batch_norm_case(shape, training, momentum, eps, affine, running):
    channels = shape[1]
    # Channel means away from 0 and variances away from 1, so that the normalisation does something.
    offset = randn(channels).view(1, channels, *([1] * (len(shape) - 2)))
    x = (randn(*shape, std=1.5) + offset).requires_grad_()
    tensors = {"x": x}
    weight = bias = running_mean = running_var = None
    if affine:
        weight = (1 + randn(channels, std=0.3)).requires_grad_()
        bias = randn(channels, std=0.5).requires_grad_()
        tensors.update(weight=weight, bias=bias)
    if running:
        running_mean = randn(channels, std=0.5)
        running_var = torch.rand(channels, dtype=torch.float64) + 0.5
        tensors.update(running_mean=running_mean.clone(), running_var=running_var.clone())
    y = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    gy = randn(*y.shape)
    inputs = [x] + ([weight, bias] if affine else [])
    for name, g in zip(["gx", "gweight", "gbias"], grads(y, inputs, gy)):
        tensors[name] = g
    tensors.update(y=y, gy=gy)
    if running:  # the running statistics after the call (updated in place when training)
        tensors.update(running_mean_out=running_mean, running_var_out=running_var)
    options = {"training": training, "momentum": momentum, "eps": eps, "affine": affine, "running": running}
    return tensors, options


def write_cases(path, cases):
    """cases: list of (description, tensors, options) -> one safetensors file with case<i>.<name> entries."""
    tensors, metadata = {}, {"cases": str(len(cases)), "generator": GENERATOR}
    for i, (description, case_tensors, options) in enumerate(cases):
        for name, t in case_tensors.items():
            tensors[f"case{i}.{name}"] = t
        metadata[f"case{i}"] = json.dumps(options, sort_keys=True)
        metadata[f"case{i}.description"] = description
    write_safetensors(path, tensors, metadata)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--out", default=os.path.join(repo_root, "tests", "golden"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(0)
    write_cases(os.path.join(args.out, "context_pool1d.safetensors"),
                [(case[0], *context_pool_case(*case[1:])) for case in CONTEXT_POOL_CASES])
    torch.manual_seed(1)
    write_cases(os.path.join(args.out, "conv1d.safetensors"),
                [(case[0], *conv1d_case(*case[1:])) for case in CONV1D_CASES])
    torch.manual_seed(5)
    write_cases(os.path.join(args.out, "conv2d.safetensors"),
                [(case[0], *conv2d_case(*case[1:])) for case in CONV2D_CASES])
    torch.manual_seed(3)
    write_cases(os.path.join(args.out, "pool.safetensors"),
                [(case[0], *pool_case(*case[1:])) for case in POOL_CASES])
    torch.manual_seed(4)
    write_cases(os.path.join(args.out, "batch_norm.safetensors"),
                [(case[0], *batch_norm_case(*case[1:])) for case in BATCH_NORM_CASES])
    torch.manual_seed(6)
    write_cases(os.path.join(args.out, "context_pool2d.safetensors"),
                [(case[0], *context_pool2d_case(*case[1:])) for case in CONTEXT_POOL2D_CASES])
    tensors, metadata = all_cases().build()
    metadata["generator"] = GENERATOR
    path = os.path.join(args.out, "ops.safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {metadata['cases']} cases)")


if __name__ == "__main__":
    main()
