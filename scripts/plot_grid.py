#!/usr/bin/env python3
"""Plots of a grid's results (docs/results/<grid>.json and the curves in docs/results/<grid>/).

    scripts/plot_grid.sh contextpool_lm          # installs python3-matplotlib on demand, then runs this

Writes, beside the table:
  <grid>_val_vs_step.png   validation bpc (language models) or accuracy (image classifiers) against step,
                           one line per config: mean over seeds, shaded min..max
  <grid>_val_vs_flops.png  the same against training FLOPs = step * batch * context * 3 * forward FLOPs per
                           token, or step * batch * 3 * forward FLOPs per image (a backward costs about
                           twice a forward)
  <grid>_context.png       the learned support size of each ContextPool layer (cp_support/<l>) and the
                           adaptive span of each layer (span/<l>) over training, mean over seeds
"""
import json
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def slug(name):
    out = ""
    for ch in name:
        if ch.isalnum() or ch in "_.":
            out += ch
        elif out and out[-1] != "-":
            out += "-"
    return out.rstrip("-")


def load_curves(results_dir, grid, row):
    """Per seed: list of metric dicts (log and evaluation steps)."""
    curves = []
    for run in row["runs"]:
        path = os.path.join(results_dir, grid, f"{slug(row['name'])}-seed-{run['seed']}.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                curves.append([json.loads(line) for line in f if line.strip()])
    return curves


def mean_band(curves, key):
    """steps, mean, min, max of `key` over seeds, at the steps every seed logged it."""
    by_step = defaultdict(list)
    for c in curves:
        for m in c:
            if key in m and m[key] is not None:
                by_step[m["step"]].append(m[key])
    steps = sorted(s for s, v in by_step.items() if len(v) == len(curves))
    mean = [sum(by_step[s]) / len(by_step[s]) for s in steps]
    return steps, mean, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps]


LAYER_STYLES = ["-", "--", ":", "-."]
# matplotlib repeats its 10 colours: configs 11-20 get them again with a dashed line and square markers.
ROW_STYLES = [("-", "o"), ("--", "s"), (":", "^")]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: plot_grid.py GRID_NAME [RESULTS_DIR (default docs/results)]")
    grid = sys.argv[1]
    results_dir = sys.argv[2] if len(sys.argv) > 2 else "docs/results"
    with open(os.path.join(results_dir, f"{grid}.json")) as f:
        table = json.load(f)
    base = table["base"]
    images = base["model"].get("type", "transformer_lm") in ("vit", "convnet")
    if images:  # accuracy per image
        metric, what, per_step, flops_key = "val_acc", "validation accuracy", base["train"]["batch_size"], "flops_per_image"
    else:  # bits per character per token
        metric, what = "val_bpc", "validation bits per character"
        per_step, flops_key = base["train"]["batch_size"] * base["model"]["context"], "flops_per_token"

    fig_step, ax_step = plt.subplots(figsize=(8, 5))
    fig_flops, ax_flops = plt.subplots(figsize=(8, 5))
    fig_ctx, ax_ctx = plt.subplots(figsize=(8, 5))
    drew_ctx = False
    for index, row in enumerate(table["configs"]):
        curves = load_curves(results_dir, grid, row)
        if not curves:
            continue
        label = f"{row['name']} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
        steps, mean, lo, hi = mean_band(curves, metric)
        linestyle, marker = ROW_STYLES[index // 10 % len(ROW_STYLES)]
        line = ax_step.plot(steps, mean, color=f"C{index % 10}", linestyle=linestyle, marker=marker, ms=3, label=label)[0]
        ax_step.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15)
        flops = [s * per_step * 3 * row[flops_key] for s in steps]
        ax_flops.plot(flops, mean, color=line.get_color(), linestyle=linestyle, marker=marker, ms=3, label=label)
        ax_flops.fill_between(flops, lo, hi, color=line.get_color(), alpha=0.15)
        keys = sorted({k for c in curves for m in c for k in m if k.startswith(("cp_support/", "span/"))})
        for k in keys:
            s, m, _, _ = mean_band(curves, k)
            kind, layer = ("support" if k.startswith("cp_") else "span"), int(k.split("/")[1])
            # The config's colour and marker from the bpc plots; the layer by line style.
            ax_ctx.plot(s, m, color=line.get_color(), linestyle=LAYER_STYLES[layer % len(LAYER_STYLES)], marker=marker,
                        ms=3, label=f"{row['name']}: {kind} layer {layer}")
            drew_ctx = True

    for ax, xlabel in ((ax_step, "step"), (ax_flops, "training FLOPs (3 x forward)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_flops.set_xscale("log")
    short = "accuracy" if images else "bpc"
    ax_step.set_title(f"{grid}: validation {short} (mean over seeds, min..max shaded)")
    ax_flops.set_title(f"{grid}: validation {short} against training compute")
    outputs = [(fig_step, "val_vs_step"), (fig_flops, "val_vs_flops")]
    if drew_ctx:
        ax_ctx.set_xlabel("step")
        ax_ctx.set_ylabel("grid positions" if images else "tokens")
        ax_ctx.set_yscale("log")
        ax_ctx.set_title("learned ContextPool support size s and adaptive span, per layer (mean over seeds)")
        ax_ctx.grid(alpha=0.3)
        ax_ctx.legend(fontsize=6)
        outputs.append((fig_ctx, "context"))
    for fig, name in outputs:
        path = os.path.join(results_dir, f"{grid}_{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        print("wrote", path)


if __name__ == "__main__":
    main()
