"""Similarity of two explanation maps (Adebayo et al. 2018): Spearman rank correlation and SSIM.

All functions take stacks of 2-D maps `(N, h, w)` (pairs compared row by row) and return `(N,)`.
`to_2d` reduces pixel maps `(N, H, W, C)` to `(N, H, W)`: the sum over channels, of the
absolute values for the `|map|` variants (as the paper's "absolute value" rows).

A constant map has no ranks: `spearman` defines its correlation with anything as 0 (no
shared structure), so a map that a randomized network flattens to zero counts as changed.
`similarity` gives NaN for a pair whose *original* map is constant (nothing to compare:
e.g. Grad-CAM at a 1x1 layer); summaries skip NaN and count them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METRICS", "normalize01", "similarity", "spearman", "ssim", "to_2d"]

METRICS = ("spearman_abs", "spearman", "ssim", "blank")


def to_2d(maps: np.ndarray, absolute: bool) -> np.ndarray:
    """`(N, H, W)` from `(N, H, W)` or `(N, H, W, C)` maps: channel sum of `|map|` or of `map`."""
    maps = np.asarray(maps, np.float64)
    if absolute:
        maps = np.abs(maps)
    return maps.sum(-1) if maps.ndim == 4 else maps


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(N,)` Spearman rank correlation of each pair of maps `a[i]`, `b[i]` (`(N, ...)` each).

    Average ranks for ties, equal to `scipy.stats.spearmanr` per pair; 0 when a map is constant.
    """
    from scipy.stats import rankdata

    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    num = (ra * rb).sum(1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def normalize01(maps: np.ndarray) -> np.ndarray:
    """Each map of `(N, ...)` scaled to [0, 1] by its own min and max (a constant map -> 0)."""
    maps = np.asarray(maps, np.float64)
    flat = maps.reshape(len(maps), -1)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return ((flat - lo) / span).reshape(maps.shape)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(N,)` SSIM (`skimage.metrics.structural_similarity`) of each pair, each map scaled to [0, 1]."""
    from skimage.metrics import structural_similarity

    a, b = normalize01(a), normalize01(b)
    side = min(a.shape[1], a.shape[2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise ValueError(f"maps of {a.shape[1]}x{a.shape[2]} are too small for SSIM (3x3 at least)")
    return np.array([structural_similarity(x, y, data_range=1.0, win_size=win) for x, y in zip(a, b)])


def similarity(original: np.ndarray, randomized: np.ndarray) -> dict[str, np.ndarray]:
    """`{metric: (N,)}` for `METRICS`: Spearman of |map|, Spearman of map, SSIM of |map|, and
    "blank": 1 where the randomized map is constant (e.g. a unit the randomization silenced), else 0."""
    abs_o, abs_r = to_2d(original, True), to_2d(randomized, True)
    flat = abs_o.reshape(len(abs_o), -1)
    undefined = flat.max(1) == flat.min(1)
    flat_r = abs_r.reshape(len(abs_r), -1)
    out = {
        "blank": (flat_r.max(1) == flat_r.min(1)).astype(np.float64),
        "spearman_abs": spearman(abs_o, abs_r),
        "spearman": spearman(to_2d(original, False), to_2d(randomized, False)),
        "ssim": ssim(abs_o, abs_r),
    }
    return {k: np.where(undefined, np.nan, v) for k, v in out.items()}
