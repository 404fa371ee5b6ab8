"""PyTorch reference for ctxpool's base character-level language model.

Command line (from the repo root):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \
        bench/reference/char_lm.py [--steps 1500] [--eval-interval 250] [--threads 2] \
        [--seed 1337] [--data ../shared/data/tinyshakespeare.txt] [--metrics out.jsonl] \
        [--log-interval 50]

Specification (the C++ side implements the same):
  Data    byte file; vocabulary = sorted distinct byte values of the whole file
          (65 for tinyshakespeare); tokens index into it. Train = bytes[:int(0.9*n)],
          validation = bytes[int(0.9*n):].
  Model   GPT-style, pre-LayerNorm. Token embedding [V,128] + learned position
          embedding [128,128]; 4 blocks of x += attn(LN1(x)); x += mlp(LN2(x));
          final LN; untied head Linear(128, V) with bias. Attention: causal, 4 heads
          of 32, one fused qkv Linear(128, 384), output Linear(128, 128), softmax of
          q k^T / sqrt(32). MLP: Linear(128, 512) -> exact (erf) GELU -> Linear(512, 128).
          LayerNorm eps 1e-5 with weight and bias. No dropout.
  Init    Linear weights and both embeddings ~ N(0, 0.02); biases 0; LN weight 1, bias 0.
  Optim   AdamW lr 2e-3, betas (0.9, 0.99), eps 1e-8; weight decay 0.1 on parameters
          with dim >= 2, 0 on biases and LayerNorm parameters. clip_grad_norm_ 1.0.
  LR      step s (0-based): s < 20: peak*(s+1)/20; else cosine from peak to 0.1*peak:
          p = (s-20)/max(1, steps-21), lr = min + 0.5*(peak-min)*(1+cos(pi*p)).
  Batches 32 rows, each a random window of 129 train tokens (start uniform in
          [0, len(train)-129]); inputs first 128, targets last 128; loss = mean CE.
  Eval    validation bits/char over all non-overlapping windows starting at 0, 128,
          256, ... while start+129 <= len(val); bpc = sum CE / positions / ln 2;
          batches of 32 windows, model.eval(), torch.no_grad().
  Steps   "step" in logs/metrics = number of completed optimizer steps (s+1). Evaluate
          when step % eval_interval == 0 and after the final step; print a log line when
          step % log_interval == 0 (loss and lr of that step, ms/step averaged over the
          interval's training steps, excluding step 1 and evaluation time). Metrics file:
          one JSON line per step. Final line:
          RESULT steps=N val_bpc=X.XXXX ms_per_step=Y.Y params=P
          (ms_per_step = mean training step time over all steps except the first).
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

D_MODEL, N_HEAD, N_LAYER, CTX, D_FF, BATCH = 128, 4, 4, 128, 512, 32
PEAK_LR, WARMUP = 2e-3, 20


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL, eps=1e-5)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.ln2 = nn.LayerNorm(D_MODEL, eps=1e-5)
        self.fc1 = nn.Linear(D_MODEL, D_FF)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(D_FF, D_MODEL)

    def attn(self, x):
        b, t, c = x.shape
        hd = c // N_HEAD
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, N_HEAD, hd).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


class CharLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok = nn.Embedding(vocab, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(CTX, D_MODEL))
        self.blocks = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(D_MODEL, eps=1e-5)
        self.head = nn.Linear(D_MODEL, vocab)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.tok.weight, 0.0, 0.02)
        nn.init.normal_(self.pos, 0.0, 0.02)

    def forward(self, idx):
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


def lr_at(s, steps):
    if s < WARMUP:
        return PEAK_LR * (s + 1) / WARMUP
    min_lr = 0.1 * PEAK_LR
    progress = (s - WARMUP) / max(1, steps - WARMUP - 1)
    return min_lr + 0.5 * (PEAK_LR - min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model, val):
    model.eval()
    starts = list(range(0, len(val) - CTX, CTX))  # start + CTX + 1 <= len(val)
    total, count = 0.0, 0
    for i in range(0, len(starts), BATCH):
        chunk = starts[i:i + BATCH]
        x = torch.stack([val[s:s + CTX] for s in chunk])
        y = torch.stack([val[s + 1:s + CTX + 1] for s in chunk])
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count / math.log(2)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "data", "tinyshakespeare.txt"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval-interval", type=int, default=250)
    ap.add_argument("--log-interval", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--metrics", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    raw = open(args.data, "rb").read()
    vocab = sorted(set(raw))
    lut = torch.zeros(256, dtype=torch.long)
    lut[torch.tensor(vocab)] = torch.arange(len(vocab))
    data = lut[torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()]
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]

    model = CharLM(len(vocab))
    params = [p for p in model.parameters()]
    n_params = sum(p.numel() for p in params)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=PEAK_LR, betas=(0.9, 0.99), eps=1e-8)
    print(f"vocab={len(vocab)} train={len(train)} val={len(val)} params={n_params}", flush=True)

    metrics = open(args.metrics, "w") if args.metrics else None
    offsets = torch.arange(CTX + 1)
    step_times, interval_times, val_bpc = [], [], float("nan")
    for s in range(args.steps):
        t0 = time.perf_counter()
        lr = lr_at(s, args.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(train) - CTX, (BATCH,))  # inclusive upper: len-129
        rows = train[starts[:, None] + offsets]
        x, y = rows[:, :CTX], rows[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss_val = loss.item()
        ms = (time.perf_counter() - t0) * 1000.0
        if s > 0:
            step_times.append(ms)
            interval_times.append(ms)

        step = s + 1
        rec = {"step": step, "train_loss": loss_val, "lr": lr, "ms_per_step": ms}
        if step % args.eval_interval == 0 or step == args.steps:
            val_bpc = evaluate(model, val)
            rec["val_bpc"] = val_bpc
            print(f"step {step:5d} | val_bpc {val_bpc:.4f}", flush=True)
        if step % args.log_interval == 0:
            avg = sum(interval_times) / max(1, len(interval_times))
            print(f"step {step:5d} | loss {loss_val:.4f} | lr {lr:.3e} | {avg:.1f} ms/step",
                  flush=True)
            interval_times = []
        if metrics:
            metrics.write(json.dumps(rec) + "\n")
    if metrics:
        metrics.close()

    mean_ms = sum(step_times) / max(1, len(step_times))
    print(f"RESULT steps={args.steps} val_bpc={val_bpc:.4f} ms_per_step={mean_ms:.1f} "
          f"params={n_params}", flush=True)


if __name__ == "__main__":
    main()
