"""ContextPool (1-D) in plain PyTorch: the naive reference for ctxpool's ops::context_pool1d.

Given features x [B, N, d] and two predictor outputs a, b [B, N], each token i pools its
neighbours j inside the window W(i) = {j : |i - j| <= K} (causal: i - K <= j <= i), clipped
to [0, N - 1]:

    w_j   = sigmoid(a_j)                              (1 in "uniform" mode)
    s_i   = s_min + (s_max - s_min) * sigmoid(b_i)    ("full" mode; s_fixed otherwise)
    g_i(j) = exp(-(i - j)^2 / (2 s_i^2))
    y_i   = sum_{j in W(i)} g_i(j) w_j x_j / (sum_{j in W(i)} g_i(j) w_j + eps)

Defaults: s_max = max(K / 2, s_min), s_fixed = (s_min + s_max) / 2.

This builds the dense [B, N, N] pooling matrix with a band mask, so it is O(B N^2 d): meant to
be read and checked against, not to be fast. Gradients come from autograd. Use float64 for
golden values. Importable:

    from context_pool import context_pool1d
    y = context_pool1d(x, a, b, window=16, causal=True)
"""
import torch

MODES = ("full", "weights_only", "uniform")


def resolve_options(window, s_min=0.5, s_max=None, s_fixed=None):
    """The defaults of ContextPool1dOptions::resolved(): returns (s_max, s_fixed) as numbers."""
    if s_max is None:
        s_max = max(window / 2, s_min)
    if s_fixed is None:
        s_fixed = (s_min + s_max) / 2
    return float(s_max), float(s_fixed)


def context_pool1d(x, a, b, window=16, causal=True, s_min=0.5, s_max=None, eps=1e-6, mode="full",
                   s_fixed=None):
    """x [B, N, d], a [B, N], b [B, N] -> y [B, N, d] (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"context_pool1d: unknown mode {mode!r} (expected one of {MODES})")
    s_max, s_fixed = resolve_options(window, s_min, s_max, s_fixed)
    n = x.shape[1]

    # Token weights w [B, N] and support sizes s [B, N].
    w = torch.sigmoid(a) if mode != "uniform" else torch.ones_like(a)
    if mode == "full":
        s = s_min + (s_max - s_min) * torch.sigmoid(b)
    else:
        s = torch.full_like(b, s_fixed)

    # offset[i, j] = i - j; the band keeps |i - j| <= K (and j <= i when causal).
    pos = torch.arange(n, device=x.device)
    offset = (pos[:, None] - pos[None, :]).to(x.dtype)
    band = offset.abs() <= window
    if causal:
        band &= offset >= 0

    # Pooling matrix P[b, i, j] = g_i(j) w_j on the band, 0 elsewhere.
    gauss = torch.exp(-offset ** 2 / (2 * s[:, :, None] ** 2))
    pool = torch.where(band, gauss * w[:, None, :], torch.zeros((), dtype=x.dtype, device=x.device))
    return pool @ x / (pool.sum(dim=-1, keepdim=True) + eps)


def context_pool2d(x, a, b, window=2, stride=1, s_min=0.5, s_max=None, eps=1e-6, mode="full", s_fixed=None):
    """The 2-D form (ctxpool's ops::context_pool2d), written independently of it, with loops over the
    output grid: x [B, H, W, d] (channels last), a [B, H, W], b [B, Ho, Wo] with Ho = (H - 1) // stride + 1
    -> y [B, Ho, Wo, d]. Output q pools the window |c_q - j| <= R per axis around its centre
    c_q = stride * q (R = min(K, size - 1), clipped at the borders) with g_q(j) = exp(-|c_q - j|^2 / (2 s_q^2)).
    """
    if mode not in MODES:
        raise ValueError(f"context_pool2d: unknown mode {mode!r} (expected one of {MODES})")
    s_max, s_fixed = resolve_options(window, s_min, s_max, s_fixed)
    _, h, w_, _ = x.shape
    ho, wo = (h - 1) // stride + 1, (w_ - 1) // stride + 1
    ry, rx = min(window, h - 1), min(window, w_ - 1)
    w = torch.sigmoid(a) if mode != "uniform" else torch.ones_like(a)
    s = s_min + (s_max - s_min) * torch.sigmoid(b) if mode == "full" else torch.full_like(b, s_fixed)
    rows = []
    for qy in range(ho):
        cols = []
        for qx in range(wo):
            cy, cx = qy * stride, qx * stride
            y0, y1 = max(0, cy - ry), min(h - 1, cy + ry)
            x0, x1 = max(0, cx - rx), min(w_ - 1, cx + rx)
            dy = torch.arange(y0, y1 + 1, dtype=x.dtype) - cy
            dx = torch.arange(x0, x1 + 1, dtype=x.dtype) - cx
            dist2 = dy[:, None] ** 2 + dx[None, :] ** 2                      # [wy, wx]
            sq = s[:, qy, qx][:, None, None]                                  # [B, 1, 1]
            c = torch.exp(-dist2 / (2 * sq ** 2)) * w[:, y0:y1 + 1, x0:x1 + 1]  # [B, wy, wx]
            num = (c[..., None] * x[:, y0:y1 + 1, x0:x1 + 1, :]).sum(dim=(1, 2))
            cols.append(num / (c.sum(dim=(1, 2))[:, None] + eps))
        rows.append(torch.stack(cols, dim=1))
    return torch.stack(rows, dim=1)
