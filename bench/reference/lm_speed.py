"""Training speed of ctxpool's LM architecture in PyTorch (the counterpart of bench/lm_speed.cpp).

    python3 bench/reference/lm_speed.py --device cuda --layers 12 --d-model 512 --heads 8 \
        --context 512 --batch 16 [--attention explicit|sdpa]

The model is bench/reference/char_lm.py's at any size: pre-LayerNorm GPT blocks, fused qkv, exact
GELU, d_mlp = 4 d_model, untied head; float32 with TF32 off (as ctxpool's default). `explicit`
attention materialises the scores as ctxpool does; `sdpa` is PyTorch's fused
scaled_dot_product_attention (its fastest float32 path). Prints one JSON line.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, attention):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attn(self, x):
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = F.softmax(s, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class LM(nn.Module):
    def __init__(self, vocab, d, heads, layers, context, attention):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(context, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, attention) for _ in range(layers))
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--attention", choices=["explicit", "sdpa"], default="sdpa")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = LM(256, a.d_model, a.heads, a.layers, a.context, a.attention).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    x = torch.randint(0, 256, (a.batch, a.context), device=dev)
    y = torch.randint(0, 256, (a.batch * a.context,), device=dev)
    seconds = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup and dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).reshape(-1, 256), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # waits for the device
        if s >= a.warmup:
            seconds += time.perf_counter() - t0
    d, L, T = a.d_model, a.layers, a.context
    # ctxpool's count (models/transformer_lm.cpp): 2 x multiply-adds of the linears, attention and head.
    flops_fwd = 2 * (L * (12 * d * d + 2 * T * d) + 256 * d)
    tps = a.batch * a.context * a.steps / seconds
    out = {"framework": f"pytorch-{a.attention}", "device": a.device, "layers": L, "d_model": d, "context": T,
           "batch": a.batch, "parameters": sum(p.numel() for p in model.parameters()),
           "ms_per_step": 1000 * seconds / a.steps, "tokens_per_s": tps, "tflops": 3 * flops_fwd * tps / 1e12}
    if dev.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
