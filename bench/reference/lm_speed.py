"""Training speed of ctxpool's LM architecture in PyTorch (the counterpart of bench/lm_speed.cpp).

    python3 bench/reference/lm_speed.py --device cuda --layers 12 --d-model 512 --heads 8 \
        --context 512 --batch 16 [--attention explicit|sdpa]
    python3 bench/reference/lm_speed.py --device cpu --config examples/configs/lm_shakespeare_contextpool.json \
        --vocab 65 --threads 2 --attention explicit

The model is bench/reference/char_lm.py's at any size: pre-LayerNorm GPT blocks, fused qkv, exact
GELU, d_mlp = 4 d_model, untied head; float32 with TF32 off (as ctxpool's default). `explicit`
attention materialises the scores as ctxpool does; `sdpa` is PyTorch's fused
scaled_dot_product_attention (its fastest float32 path). Prints one JSON line.

--config reads the model and batch size of a ctxpool training config, including ContextPool as the
attention input with pooled keys and values (placement attn_input, pooled kv): the predictor is two
k-wide causal convolutions with GELU between, the pooling bench/reference/context_pool.py's formula.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from context_pool import context_pool1d  # noqa: E402


class ContextPool(nn.Module):
    """ctxpool's nn::ContextPool1d (causal, no residual): predictor convolutions, then the pooling."""

    def __init__(self, d, cp):
        super().__init__()
        k, hidden = cp.get("kernel_size", 3), cp.get("hidden", 0) or max(1, d // 4)
        self.cp, self.pad = cp, k - 1
        self.conv1, self.conv2 = nn.Conv1d(d, hidden, k), nn.Conv1d(hidden, 2, k)

    def forward(self, x):
        h = F.conv1d(F.pad(x.transpose(1, 2), (self.pad, 0)), self.conv1.weight, self.conv1.bias)
        logits = self.conv2(F.pad(F.gelu(h), (self.pad, 0)))
        cp = self.cp
        return context_pool1d(x, logits[:, 0], logits[:, 1], window=cp.get("window", 16), causal=True,
                              s_min=cp.get("s_min", 0.5), s_max=cp.get("s_max", 0) or None, mode=cp.get("mode", "full"))


class Block(nn.Module):
    def __init__(self, d, heads, attention, d_mlp=None, cp=None):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, d_mlp or 4 * d), nn.Linear(d_mlp or 4 * d, d)
        self.pool = ContextPool(d, cp) if cp else None

    def attn(self, x):
        b, t, c = x.shape
        if self.pool is None:
            q, k, v = self.qkv(x).split(c, dim=2)
        else:  # queries read x, keys and values the pooled x (the same weights as one qkv projection)
            q = F.linear(x, self.qkv.weight[:c], self.qkv.bias[:c])
            k, v = F.linear(self.pool(x), self.qkv.weight[c:], self.qkv.bias[c:]).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
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
    def __init__(self, vocab, d, heads, layers, context, attention, d_mlp=None, cp=None):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(context, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, attention, d_mlp, cp) for _ in range(layers))
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
    ap.add_argument("--config", help="a ctxpool training config: its model and batch size (flags given after "
                    "it do not override it here; pass only --vocab, --threads, --steps, --warmup)")
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    a = ap.parse_args()
    d_mlp, cp = None, None
    if a.config:
        with open(a.config) as f:
            m = json.load(f)["model"]
        with open(a.config) as f:
            a.batch = json.load(f)["train"]["batch_size"]
        a.layers, a.d_model, a.heads, a.context, d_mlp = m["n_layers"], m["d_model"], m["n_heads"], m["context"], m["d_mlp"]
        if m.get("attention", "full") != "full" or m.get("dropout", 0) != 0:
            sys.exit("lm_speed.py: only full attention without dropout is mirrored here")
        cp = m.get("context_pool", {})
        if cp.get("enabled"):
            if cp.get("placement", "attn_input") != "attn_input" or cp.get("pooled", "kv") != "kv" or cp.get("residual"):
                sys.exit("lm_speed.py: only ContextPool placement attn_input, pooled kv, no residual is mirrored here")
        else:
            cp = None
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.attention == "sdpa" and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"lm_speed.py: PyTorch {torch.__version__} has no scaled_dot_product_attention; use --attention explicit")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device(a.device)
    V = a.vocab
    model = LM(V, a.d_model, a.heads, a.layers, a.context, a.attention, d_mlp, cp).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    x = torch.randint(0, V, (a.batch, a.context), device=dev)
    y = torch.randint(0, V, (a.batch * a.context,), device=dev)
    seconds = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup and dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).reshape(-1, V), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # waits for the device
        if s >= a.warmup:
            seconds += time.perf_counter() - t0
    d, L, T = a.d_model, a.layers, a.context
    # ctxpool's count (models/transformer_lm.cpp): 2 x multiply-adds of the linears, attention and head.
    # (the config-driven models, with their own MLP width and ContextPool, are not counted here: 0)
    flops_fwd = 0 if a.config else 2 * (L * (12 * d * d + 2 * T * d) + V * d)
    tps = a.batch * a.context * a.steps / seconds
    out = {"framework": f"pytorch-{a.attention}", "torch": torch.__version__, "device": a.device, "layers": L,
           "d_model": d, "context": T, "batch": a.batch, "vocab": V, "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in model.parameters()),
           "ms_per_step": 1000 * seconds / a.steps, "tokens_per_s": tps, "tflops": 3 * flops_fwd * tps / 1e12}
    if dev.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    main()
