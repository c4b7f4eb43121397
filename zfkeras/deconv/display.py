"""Displaying projections and cutting receptive-field patches: small pure NumPy functions.

One display normalization is used everywhere (CLI, notebooks, report), the
paper's "contrast artificially enhanced" made precise:

    display = clip(0.5 + 0.5 * contrast * x / max|x|, 0, 1)

per projection (the max over its pixels and colour channels together): a zero
signal is mid grey 0.5, the strongest value of either sign reaches black or
white (contrast 1), and `contrast > 1` brightens faint structure by clipping
the strongest pixels. A projection that is all zero stays uniform grey.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GREY = 128  # uint8 fill outside the image, matches display grey 0.5


def to_display(projections, contrast: float = 1.0) -> np.ndarray:
    """Map projections `(..., H, W, C)` to display values in [0, 1] (see module doc).

    Each `(H, W, C)` image is scaled on its own; returns float32 of the same shape.
    """
    if not contrast > 0:
        raise ValueError(f"`contrast` must be > 0; got {contrast!r}")
    x = np.asarray(projections, dtype=np.float32)
    if x.ndim < 3:
        raise ValueError(f"projections must be (..., H, W, C); got shape {x.shape}")
    peak = np.max(np.abs(x), axis=(-3, -2, -1), keepdims=True)
    scale = np.where(peak > 0, 0.5 * contrast / np.where(peak > 0, peak, 1.0), 0.0)
    return np.clip(0.5 + x * scale, 0.0, 1.0).astype(np.float32)


def to_uint8(display) -> np.ndarray:
    """Display values in [0, 1] to uint8 0..255 (rounded)."""
    return np.round(np.clip(np.asarray(display, np.float32), 0, 1) * 255).astype(np.uint8)


def cut_patch(image, window: Sequence[int], fill=GREY) -> np.ndarray:
    """The `window` = (top, left, bottom, right) of `image` (H, W, C); `fill` outside.

    The window may extend past the image (receptive fields do, into padding);
    cells outside are `fill`. Bottom and right are exclusive.
    """
    image = np.asarray(image)
    top, left, bottom, right = (int(v) for v in window)
    if bottom <= top or right <= left:
        raise ValueError(f"empty window {tuple(window)}")
    h, w = image.shape[:2]
    out = np.full((bottom - top, right - left, *image.shape[2:]), fill, dtype=image.dtype)
    t, l = max(top, 0), max(left, 0)
    b, r = min(bottom, h), min(right, w)
    if b > t and r > l:
        out[t - top : b - top, l - left : r - left] = image[t:b, l:r]
    return out
