"""PyTorch reference for ctxpool's image classifiers: the same model, data pipeline and optimizer,
read from the same config file, so that accuracies can be compared run against run.

Command line (from the repo root):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \
        bench/reference/vision.py --config examples/configs/fmnist_vit.json [--steps N] [--threads 1] \
        [--seed 1337] [--metrics out.jsonl]

Specification (what models/vit.cpp, models/convnet.cpp and models/image_trainer.cpp implement):
  Data    Fashion-MNIST IDX files in data.path; the last data.validation_size training images are the
          validation set; pixels / 255, then per channel (x - mean) / std with the training images'
          statistics. Training batches: epochs of shuffled batches (drop_last); each image, with
          crop_padding p > 0, is a random H x W crop of the image zero-padded by p on each side (before
          normalisation), and with horizontal_flip mirrored with probability 1/2.
  ViT     Conv2d(C, d, p, stride p) patches -> [B, N, d]; class token in front (pooling cls) or none
          (pooling mean); + learned position embeddings [1, T, d]; n pre-LN blocks x += attn(LN1(x)),
          x += mlp(LN2(x)) with bidirectional attention (fused qkv Linear(d, 3d), output Linear(d, d),
          heads of d / n_heads), MLP Linear(d, d_mlp) -> exact GELU -> Linear(d_mlp, d); final LN; the
          class token (or the mean of the tokens) -> Linear(d, classes). Init: every parameter with
          dim >= 2 (conv kernels, class token and position embeddings included) N(0, init_std), biases
          0, LayerNorm (1, 0).
  ConvNet stages of convs_per_stage x [Conv2d 3x3 pad 1 no bias -> BatchNorm2d -> ReLU], MaxPool2d(2)
          between stages, global average pooling, Linear head; PyTorch's default init.
  Optim   AdamW (betas, eps, weight decay on parameters with dim >= 2 when decay_matrices_only), or
          SGD with momentum; clip_grad_norm_ grad_clip (0: off); lr warm-up + cosine as
          nn/optim/schedule.h. Loss: mean cross-entropy.
  Eval    every eval_interval steps and after the last: validation accuracy and loss, model.eval().
ContextPool2d is not part of this reference (compare plain models; the ContextPool op itself is
checked against PyTorch in tests/golden/).
"""
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    return torch.frombuffer(bytearray(data[4 + 4 * ndims:]), dtype=torch.uint8).reshape(dims)


def load_fashion_mnist(path, validation_size):
    xs = read_idx(os.path.join(path, "train-images-idx3-ubyte")).float().div(255).unsqueeze(1)
    ys = read_idx(os.path.join(path, "train-labels-idx1-ubyte")).long()
    xt = read_idx(os.path.join(path, "t10k-images-idx3-ubyte")).float().div(255).unsqueeze(1)
    yt = read_idx(os.path.join(path, "t10k-labels-idx1-ubyte")).long()
    kept = xs.shape[0] - validation_size
    return (xs[:kept], ys[:kept]), (xs[kept:], ys[kept:]), (xt, yt)


class Block(nn.Module):
    def __init__(self, d, heads, d_mlp):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, d_mlp), nn.Linear(d_mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)  # torch 1.13: no SDPA
        a = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    def __init__(self, m, channels, size, classes):
        super().__init__()
        d, p, im = m["d_model"], m["image"]["patch_size"], m["image"]
        self.cls = im["pooling"] == "cls"
        tokens = (size // p) ** 2 + (1 if self.cls else 0)
        self.patch = nn.Conv2d(channels, d, p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if self.cls else None
        self.pos = nn.Parameter(torch.zeros(1, tokens, d))
        self.blocks = nn.ModuleList(Block(d, m["n_heads"], m["d_mlp"]) for _ in range(m["n_layers"]))
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, classes)
        for name, prm in self.named_parameters():
            if prm.dim() >= 2:
                nn.init.normal_(prm, 0.0, m["init_std"])
            elif name.endswith("bias"):
                nn.init.zeros_(prm)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        if self.cls:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_f(x)
        return self.head(x[:, 0] if self.cls else x.mean(dim=1))


class ConvNet(nn.Module):
    def __init__(self, m, channels, classes):
        super().__init__()
        im, layers, c_in = m["image"], [], channels
        assert im["downsample"] == "max_pool", "the reference has no ContextPool2d"
        for s, width in enumerate(im["channels"]):
            for _ in range(im["convs_per_stage"]):
                layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                c_in = width
            if s + 1 < len(im["channels"]):
                layers.append(nn.MaxPool2d(2))
        self.body, self.head = nn.Sequential(*layers), nn.Linear(c_in, classes)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def augment(x, pad, flip, gen):
    n, _, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def lr_at(step, o, s, steps):
    warm, peak, low = s["warmup_steps"], o["lr"], s["min_lr_ratio"] * o["lr"]
    if step < warm:
        return peak * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, steps - warm - 1))
    return low + 0.5 * (peak - low) * (1 + math.cos(math.pi * progress))


def evaluate(model, x, y, mean, std, batch):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model((x[i:i + batch] - mean) / std)
            loss += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / x.shape[0], correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--metrics")
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    m, d, o, s, t = cfg["model"], cfg["data"], cfg["optim"], cfg["schedule"], cfg["train"]
    m.setdefault("init_std", 0.02)
    steps = args.steps or t["steps"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed if args.seed is not None else t.get("seed", 1337))
    gen = torch.Generator().manual_seed(args.seed if args.seed is not None else t.get("seed", 1337))

    (xtr, ytr), (xva, yva), _ = load_fashion_mnist(d.get("path", "data/fashion-mnist"), d.get("validation_size", 5000))
    mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    classes, channels, size = int(ytr.max()) + 1, xtr.shape[1], xtr.shape[2]
    model = ViT(m, channels, size, classes) if m["type"] == "vit" else ConvNet(m, channels, classes)
    decay = [p for p in model.parameters() if p.dim() >= 2 or not o.get("decay_matrices_only", True)]
    no_decay = [p for p in model.parameters() if p.dim() < 2 and o.get("decay_matrices_only", True)]
    groups = [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if o.get("type", "adamw") == "sgd":
        opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o.get("momentum", 0.9))
    else:
        opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.99)),
                                eps=o.get("eps", 1e-8))
    batch, per_epoch = t["batch_size"], xtr.shape[0] // t["batch_size"]
    out = open(args.metrics, "w") if args.metrics else None
    print(f"reference: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{per_epoch} batches of {batch} per epoch, {args.threads} threads", flush=True)
    order, t0, step_ms = None, time.time(), []
    for step in range(steps):
        step_start = time.perf_counter()
        if step % per_epoch == 0:
            order = torch.randperm(xtr.shape[0], generator=gen)
        idx = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        x = augment(xtr[idx], d.get("crop_padding", 0), d.get("horizontal_flip", False), gen)
        lr = lr_at(step, o, s, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = F.cross_entropy(model((x - mean) / std), ytr[idx])
        opt.zero_grad()
        loss.backward()
        if o.get("grad_clip", 1.0) > 0:
            nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
        opt.step()
        rec = {"step": step + 1, "train_loss": loss.item(), "lr": lr}
        step_ms.append((time.perf_counter() - step_start) * 1e3)
        done = step + 1
        if done % t.get("eval_interval", 250) == 0 or done == steps:
            rec["val_loss"], rec["val_acc"] = evaluate(model, xva, yva, mean, std, t.get("eval_batch_size", 500))
            print(f"step {done:6d} (epoch {done / per_epoch:.2f}) | val_acc {rec['val_acc']:.4f} | "
                  f"val_loss {rec['val_loss']:.4f} | {time.time() - t0:.0f} s", flush=True)
        if out:
            out.write(json.dumps(rec) + "\n")
    median_ms = sorted(step_ms)[len(step_ms) // 2]  # a training step, data and optimizer included
    print(f"RESULT steps={steps} val_acc={rec['val_acc']:.4f} seconds={time.time() - t0:.0f} "
          f"median_ms_per_step={median_ms:.1f}", flush=True)


if __name__ == "__main__":
    main()
