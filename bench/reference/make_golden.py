"""Writes PyTorch golden values for ctxpool's ops tests (tests/ops/test_golden.cpp).

Command line (from the repo root; needs PyTorch, which CI does not):
    /usr/bin/python3 bench/reference/make_golden.py [--out tests/golden]

Writes, in float64:
  context_pool1d.safetensors  inputs case<i>.{x, a, b}, upstream gradient case<i>.gy, outputs
                              case<i>.{y, gx, ga, gb}; metadata "case<i>" = the resolved options (JSON).
  conv1d.safetensors          inputs case<i>.{x, weight, bias (if any)}, case<i>.gy, outputs
                              case<i>.{y, gx, gweight, gbias (if any)}; metadata "case<i>" =
                              {"pad_left", "pad_right", "dilation", "bias"} (JSON).
Both also carry metadata "case<i>.description", "cases" (the count) and "generator". Seeded: two
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
from context_pool import context_pool1d, resolve_options  # noqa: E402

GENERATOR = f"bench/reference/make_golden.py, torch {torch.__version__}"


def write_safetensors(path, tensors, metadata):
    """tensors: {name: float64 torch tensor}; metadata: {str: str}."""
    names = sorted(tensors)
    header, chunks, offset = {}, [], 0
    for name in names:
        data = tensors[name].detach().cpu().contiguous().numpy().astype("<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(tensors[name].shape),
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


if __name__ == "__main__":
    main()
