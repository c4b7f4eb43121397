"""What the figures' plots share: tiling images, whole-factor upscaling, dead-map ranges, atomic saving.

NumPy only (matplotlib is imported by the plot functions that draw, never here), so
figure modules can import this while `zfkeras --help` stays light.
"""

from __future__ import annotations

import io
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from zfkeras.utils.io import atomic_write_bytes

if TYPE_CHECKING:
    import matplotlib.figure

__all__ = ["MIN_TILE", "PAGE_WIDTH", "compact_ranges", "save_figure", "tile", "tile_factor", "upscale"]

MIN_TILE = 48  # px: the smallest side a projection / patch tile is displayed at (Figs 2, 6, the atlas)
PAGE_WIDTH = 1100  # px: the width a report figure is read at (a 1280 px window less the page's margins)


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile `(K, h, w, C)` images in a grid (`ncols` default ceil(sqrt(K))), `pad` px apart.

    Returns `(rows * (h + pad) - pad, ncols * (w + pad) - pad, C)` of the input dtype,
    `fill` in the gaps and the unused cells.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (K, h, w, C) array; got shape {images.shape}")
    k, h, w, c = images.shape
    ncols = ncols or math.ceil(math.sqrt(k))
    nrows = math.ceil(k / ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), fill, images.dtype)
    for i in range(k):
        r, q = divmod(i, ncols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i]
    return out


def upscale(images: np.ndarray, factor: int, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole `factor` along the two image `axes` (crisp pixels)."""
    images = np.asarray(images)
    if factor <= 1:
        return images
    return np.repeat(np.repeat(images, factor, axis=axes[0]), factor, axis=axes[1])


def tile_factor(tile_side: int, min_side: int = MIN_TILE) -> int:
    """The whole upscaling factor that shows a `tile_side` px tile at >= `min_side` px."""
    return max(1, math.ceil(min_side / max(1, int(tile_side))))


def compact_ranges(values) -> str:
    """`[1, 2, 3, 7, 9, 10]` -> `"1-3, 7, 9-10"` (sorted, duplicates dropped): dead maps in captions."""
    vals = sorted({int(v) for v in values})
    parts, start = [], None
    for i, v in enumerate(vals):
        if start is None:
            start = v
        if i + 1 == len(vals) or vals[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def save_figure(fig: "matplotlib.figure.Figure", path: str | os.PathLike, dpi: int | None = None,
                tight: bool = True) -> None:
    """Write `fig` as PNG (or the format of the suffix) atomically."""
    buf = io.BytesIO()
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    atomic_write_bytes(path, buf.getvalue())
