"""Fig 2 style figures from `LayerVisuals` (matplotlib, no pyplot state: Agg-safe).

Each feature map that fired gets a cell: its top-k projections in a square grid
(left) and the k image patches that drove them (right), strongest first in
row-major order. Every tile is shown at least `MIN_TILE` px on a side (nearest-
neighbour upscaling by a whole factor, so 7 px conv1 tiles stay crisp and
readable). Dead feature maps (never fired on the images) get no blank cell:
they are listed, compactly, under the figure. The title, every label and the
caption saying how projections are normalized lie inside the canvas (tested
with the renderer's text extents). Plotting only: nothing here computes
activations.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.figure import Figure

from zfkeras.deconv.visuals import LayerVisuals

__all__ = ["MIN_TILE", "compact_ranges", "layer_mosaic", "plot_top_activations", "tile_factor"]

MIN_TILE = 48  # px: the smallest side a tile is displayed at
_GAP = 2  # px between tiles
_CELL_GAP = 14  # px between the projection grid and the patch grid / cells
_LABEL = 20  # px above each cell for its label
_WHITE = 255
_FONT_PX = {8: 11, 9: 12.5, 10: 14}  # approx. line height in px at 100 dpi


def tile_factor(tile_side: int, min_side: int = MIN_TILE) -> int:
    """The whole upscaling factor that shows a `tile_side` px tile at >= `min_side` px."""
    return max(1, math.ceil(min_side / max(1, int(tile_side))))


def compact_ranges(values) -> str:
    """`[1, 2, 3, 7, 9, 10]` -> `"1-3, 7, 9-10"` (sorted, duplicates dropped)."""
    vals = sorted({int(v) for v in values})
    parts, start = [], None
    for i, v in enumerate(vals):
        if start is None:
            start = v
        if i + 1 == len(vals) or vals[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def _grid(tiles: np.ndarray, factor: int = 1) -> np.ndarray:
    """(k, P, Q, 3) tiles -> one square-ish grid image (each tile upscaled by `factor`), gaps white."""
    tiles = np.asarray(tiles)
    if factor > 1:
        tiles = np.repeat(np.repeat(tiles, factor, axis=1), factor, axis=2)
    k, p, q, c = tiles.shape
    g = math.ceil(math.sqrt(k))
    rows = math.ceil(k / g)
    out = np.full((rows * p + (rows - 1) * _GAP, g * q + (g - 1) * _GAP, c), _WHITE, np.uint8)
    for n in range(k):
        r, col = divmod(n, g)
        out[r * (p + _GAP) : r * (p + _GAP) + p, col * (q + _GAP) : col * (q + _GAP) + q] = tiles[n]
    return out


def layer_mosaic(
    visuals: LayerVisuals, ncols: int = 4, min_tile: int = MIN_TILE, rows: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The cells of `rows` (default: every channel) as one uint8 image, and each cell's (x, y) top-left px.

    Tiles are upscaled by `tile_factor(P, min_tile)`; a `_LABEL` px strip above each cell is left
    white for its label.
    """
    rows = np.arange(len(visuals.channels)) if rows is None else np.asarray(rows, np.int64)
    if not len(rows):
        raise ValueError(f"no channels to plot for layer {visuals.layer!r}")
    factor = tile_factor(visuals.projections.shape[2], min_tile)
    cells = []
    for i in rows:
        left, right = _grid(visuals.projections[i], factor), _grid(visuals.patches[i], factor)
        gap = np.full((left.shape[0], _CELL_GAP, left.shape[2]), _WHITE, np.uint8)
        cells.append(np.concatenate([left, gap, right], axis=1))
    ch, cw = cells[0].shape[:2]
    ncols = max(1, min(ncols, len(cells)))
    nrows = math.ceil(len(cells) / ncols)
    mosaic = np.full((nrows * (ch + _LABEL + _CELL_GAP), ncols * (cw + 2 * _CELL_GAP), 3), _WHITE, np.uint8)
    origins = []
    for n, cell in enumerate(cells):
        r, c = divmod(n, ncols)
        y, x = r * (ch + _LABEL + _CELL_GAP) + _LABEL, c * (cw + 2 * _CELL_GAP) + _CELL_GAP
        mosaic[y : y + ch, x : x + cw] = cell
        origins.append((x, y))
    return mosaic, origins


def _wrap(text: str, width_px: float, font_px: float) -> list[str]:
    chars = max(20, int(width_px / (0.56 * font_px)))  # a conservative average glyph width
    return [line for para in text.split("\n") for line in (textwrap.wrap(para, chars) or [""])]


def plot_top_activations(
    visuals: LayerVisuals, ncols: int = 4, title: str | None = None, dpi: int = 100,
    min_tile: int = MIN_TILE, n_images: int | None = None,
) -> Figure:
    """Fig 2 panel for one layer: per live feature map, k projections beside k image patches.

    Args:
        visuals: from `top_projections`.
        ncols: cells per row.
        title: figure title (default: layer, k, what left and right are).
        dpi: the figure is at the mosaic's native resolution at this dpi.
        min_tile: smallest displayed tile side in px (nearest-neighbour upscaling).
        n_images: images scanned (said in the dead-map line when given).

    Returns:
        a `matplotlib.figure.Figure` (save with `fig.savefig(path)`; in a notebook it displays as is).
    """
    dead = np.asarray(visuals.dead, bool)
    live = np.flatnonzero(~dead)
    k = visuals.projections.shape[1]
    side = visuals.projections.shape[2]
    factor = tile_factor(side, min_tile)
    if len(live):
        mosaic, origins = layer_mosaic(visuals, ncols, min_tile, rows=live)
    else:
        mosaic, origins = np.full((40, 600, 3), _WHITE, np.uint8), []
    h, w = mosaic.shape[:2]
    w_fig = max(w, 480)
    title = title or (
        f"{visuals.layer}: top {k} activations per feature map "
        f"(left: {visuals.rule} projections, right: image patches)"
    )
    caption = (
        f"Each projection is scaled on its own: grey = 0, black/white = its largest |value|"
        f"{'' if visuals.contrast == 1 else f' / contrast {visuals.contrast:g}'}. "
        f"Tiles: the {side} px receptive field, shown x{factor} (nearest neighbour)."
    )
    if dead.any():
        on = f" on these {n_images} images" if n_images else ""
        caption += (f"\nDead{on} (never fired, not drawn): {int(dead.sum())} of {len(dead)} maps: "
                    f"{compact_ranges(np.asarray(visuals.channels)[dead])}.")
    pad = 8
    title_lines = _wrap(title, w_fig - 2 * pad, _FONT_PX[10])
    cap_lines = _wrap(caption, w_fig - 2 * pad, _FONT_PX[8])
    head = int(pad + len(title_lines) * _FONT_PX[10] * 1.25 + pad)
    foot = int(pad + len(cap_lines) * _FONT_PX[8] * 1.3 + pad)
    H = h + head + foot
    fig = Figure(figsize=(w_fig / dpi, H / dpi), dpi=dpi)
    ax = fig.add_axes((0, foot / H, w / w_fig, h / H))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for n, (x, y) in zip(live, origins):
        c = int(visuals.channels[n])
        fired = int(np.sum(np.asarray(visuals.values[n]) > 0))
        few = f"   (fired on {fired} image{'s' if fired > 1 else ''}; grey: none)" if fired < k else ""
        ax.text(x, y - 5, f"map {c}   max {float(visuals.values[n, 0]):.3g}{few}", fontsize=8,
                va="bottom", ha="left", color="black")
    fig.text(pad / w_fig, 1 - pad / H, "\n".join(title_lines), fontsize=10, va="top", ha="left")
    fig.text(pad / w_fig, (foot - pad) / H, "\n".join(cap_lines), fontsize=8, va="top", ha="left",
             color="#333333", linespacing=1.3)
    return fig
