#!/usr/bin/env python3
"""Draws what ContextPool pools: the passage written by ctxpool-supports (PREFIX.json), once per
ContextPool layer, each character on a cell coloured by the support size s the layer chose for it.

    scripts/plot_supports.sh docs/results/supports      # -> docs/results/supports.png (installs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import cm, colors  # noqa: E402

COLUMNS = 64


def characters(raw):
    """The passage as (character, index of its first byte) pairs: tokens, and so supports, are bytes,
    and a multi-byte UTF-8 character takes the support of its first byte."""
    out, i = [], 0
    while i < len(raw):
        lead = raw[i]
        n = 4 if 0xF0 <= lead < 0xF8 else 3 if 0xE0 <= lead < 0xF0 else 2 if 0xC0 <= lead < 0xE0 else 1
        if i + n > len(raw) or any(b & 0xC0 != 0x80 for b in raw[i + 1:i + n]):
            n = 1  # malformed: the byte alone
        out.append((raw[i:i + n].decode("utf-8", errors="replace")[:1], i))
        i += n
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: plot_supports.py PREFIX  (reads PREFIX.json, writes PREFIX.png)")
    prefix = sys.argv[1]
    with open(prefix + ".json") as f:
        data = json.load(f)
    chars = characters(bytes(data["text"]))
    layers = data["layers"]
    rows = (len(chars) + COLUMNS - 1) // COLUMNS
    norm = colors.Normalize(vmin=data["s_min"], vmax=data["s_max"])
    cmap = cm.get_cmap("coolwarm")
    fig, axes = plt.subplots(len(layers), 1, figsize=(COLUMNS * 0.16 + 1.5, len(layers) * (rows * 0.22 + 0.6)),
                             squeeze=False)
    for l, (ax, support) in enumerate(zip(axes[:, 0], layers)):
        for c, (ch, first_byte) in enumerate(chars):
            r, k = divmod(c, COLUMNS)
            ax.add_patch(plt.Rectangle((k, -r - 1), 1, 1, color=cmap(norm(support[first_byte])), lw=0))
            shown = "\u21b5" if ch == "\n" else ch
            ax.text(k + 0.5, -r - 0.5, shown, ha="center", va="center", family="monospace", fontsize=7)
        ax.set_xlim(0, COLUMNS)
        ax.set_ylim(-rows, 0)
        ax.set_axis_off()
        ax.set_title(f"ContextPool layer {l}: support size s per character (tokens)", fontsize=9, loc="left")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[:, 0].tolist(), shrink=0.6, label="s (tokens)")
    fig.savefig(prefix + ".png", dpi=120, bbox_inches="tight")
    print("wrote", prefix + ".png")


if __name__ == "__main__":
    main()
