#!/usr/bin/python3
"""Runs bench_ops (ctxpool) and the same cases in PyTorch (CPU) in one go; prints a Markdown table
with both times and the ratio ctxpool / PyTorch (below 1: ctxpool is faster).

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/run_ops.py build/bench/bench_ops

Both sides use the same thread count (CTXPOOL_NUM_THREADS / torch.set_num_threads, default 2).
Debian's PyTorch uses the reference BLAS unless LD_LIBRARY_PATH points at OpenBLAS's OpenMP build.
"""
import os
import subprocess
import sys
import time

import torch

THREADS = int(os.environ.get("CTXPOOL_NUM_THREADS", "2"))
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def median_ms(fn, reps=20):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def leaf(*shape):
    return torch.randn(*shape).requires_grad_(True)


def torch_cases():
    N, D, H, V = 32 * 128, 128, 512, 65
    a512, b512 = torch.randn(512, 512), torch.randn(512, 512)
    x, w1, hid, bias = leaf(N, D), leaf(D, H), leaf(N, H), leaf(H)
    ln_w, ln_b = leaf(D), leaf(D)
    scores = leaf(32 * 4, 128, 128)
    q, k = leaf(32, 4, 128, 32), leaf(32, 4, 128, 32)
    logits = leaf(N, V)
    target = torch.randn(N, V).argmax(1)
    conv_x, conv_w, conv_b = leaf(32, 64, 16, 16), leaf(64, 64, 3, 3), leaf(64)
    rgb, rgb_w, rgb_b = torch.randn(32, 3, 28, 28), leaf(32, 3, 3, 3), leaf(32)
    gray, patch_w, patch_b = torch.randn(32, 1, 28, 28), leaf(64, 1, 4, 4), leaf(64)
    bn_x, bn_w, bn_b = leaf(128, 16, 28, 28), leaf(16), leaf(16)
    bn_mean, bn_var = torch.zeros(16), torch.ones(16)
    s1 = leaf(128, 16, 28, 28), leaf(16, 16, 3, 3), leaf(16)
    s2 = leaf(128, 32, 14, 14), leaf(32, 32, 3, 3), leaf(32)
    s3 = leaf(128, 64, 7, 7), leaf(64, 64, 3, 3), leaf(64)
    f1 = torch.randn(128, 1, 28, 28), leaf(16, 1, 3, 3), leaf(16)
    c1 = torch.randn(128, 3, 32, 32), leaf(32, 3, 3, 3), leaf(32)
    F = torch.nn.functional

    def no_grad(fn):
        def run():
            with torch.no_grad():
                fn()
        return run

    return {
        "matmul 512x512x512 fwd": no_grad(lambda: a512 @ b512),
        "linear 4096x128 @ 128x512 fwd+bwd": lambda: (x @ w1).sum().backward(),
        "bmm attention scores q@k^T fwd+bwd": lambda: (q @ k.transpose(-1, -2)).sum().backward(),
        "add bias [4096,512]+[512] fwd+bwd": lambda: (hid + bias).sum().backward(),
        "gelu tanh [4096,512] fwd+bwd": lambda: F.gelu(hid, approximate="tanh").sum().backward(),
        "softmax [128,128,128] fwd+bwd": lambda: (F.softmax(scores, -1) * scores).sum().backward(),
        "layer_norm [4096,128] fwd+bwd": lambda: (F.layer_norm(x, (D,), ln_w, ln_b) * x).sum().backward(),
        "cross_entropy [4096,65] fwd+bwd": lambda: F.cross_entropy(logits, target).backward(),
        "sum [4096,512] fwd": no_grad(lambda: hid.sum(1)),
        "batch_norm train [128,16,28,28] fwd+bwd":
            lambda: (F.batch_norm(bn_x, bn_mean, bn_var, bn_w, bn_b, training=True) * bn_x).sum().backward(),
        "relu [128,16,28,28] fwd+bwd": lambda: (F.relu(bn_x) * bn_x).sum().backward(),
        "conv2d [32,64,16,16] 3x3 pad 1 fwd": no_grad(lambda: F.conv2d(conv_x, conv_w, conv_b, padding=1)),
        "conv2d [32,64,16,16] 3x3 pad 1 fwd+bwd": lambda: F.conv2d(conv_x, conv_w, conv_b, padding=1).sum().backward(),
        "conv2d [32,3,28,28] 3x3 pad 1 fwd": no_grad(lambda: F.conv2d(rgb, rgb_w, rgb_b, padding=1)),
        "conv2d [32,3,28,28] 3x3 pad 1 fwd+bwd": lambda: F.conv2d(rgb, rgb_w, rgb_b, padding=1).sum().backward(),
        "conv2d patches [32,1,28,28] 4x4 stride 4 fwd": no_grad(lambda: F.conv2d(gray, patch_w, patch_b, stride=4)),
        "conv2d patches [32,1,28,28] 4x4 stride 4 fwd+bwd":
            lambda: F.conv2d(gray, patch_w, patch_b, stride=4).sum().backward(),
        "conv2d convnet [128,16,28,28] 16->16 fwd+bwd": lambda: F.conv2d(*s1, padding=1).sum().backward(),
        "conv2d convnet [128,32,14,14] 32->32 fwd+bwd": lambda: F.conv2d(*s2, padding=1).sum().backward(),
        "conv2d convnet [128,64,7,7] 64->64 fwd+bwd": lambda: F.conv2d(*s3, padding=1).sum().backward(),
        "conv2d convnet first [128,1,28,28] 1->16 fwd+bwd": lambda: F.conv2d(*f1, padding=1).sum().backward(),
        "conv2d cifar first [128,3,32,32] 3->32 fwd+bwd": lambda: F.conv2d(*c1, padding=1).sum().backward(),
    }


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/bench/bench_ops"
    env = dict(os.environ, CTXPOOL_NUM_THREADS=str(THREADS))
    out = subprocess.run([binary], check=True, capture_output=True, text=True, env=env).stdout
    ours = {}
    for line in out.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, ms = line.rsplit("\t", 1)
        ours[name] = float(ms)
    print(f"threads: {THREADS}; torch {torch.__version__}, BLAS: "
          f"{'openblas-openmp' if 'openblas-openmp' in os.environ.get('LD_LIBRARY_PATH', '') else 'default'}")
    print()
    print("| case | ctxpool ms | PyTorch ms | ratio |")
    print("|---|---:|---:|---:|")
    for name, fn in torch_cases().items():
        ref = median_ms(fn)
        mine = ours.get(name)
        ratio = f"{mine / ref:.2f}" if mine is not None else "-"
        print(f"| {name} | {mine if mine is not None else '-':} | {ref:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
