"""Fig 2 style figures from `LayerVisuals` (matplotlib, no pyplot state: Agg-safe).

Each feature map gets a cell: its top-k projections in a square grid (left)
and the k image patches that drove them (right), strongest first in row-major
order. Cells are laid out `ncols` per row; dead channels (never fired on the
dataset) are labelled and listed in the title. Plotting only: nothing here
computes activations.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from zfkeras.deconv.visuals import LayerVisuals

_GAP = 2  # px between tiles
_CELL_GAP = 12  # px between the projection grid and the patch grid / cells
_WHITE = 255


def _grid(tiles: np.ndarray) -> np.ndarray:
    """(k, P, Q, 3) tiles -> one square-ish grid image, gaps white."""
    k, p, q, c = tiles.shape
    g = math.ceil(math.sqrt(k))
    rows = math.ceil(k / g)
    out = np.full((rows * p + (rows - 1) * _GAP, g * q + (g - 1) * _GAP, c), _WHITE, np.uint8)
    for n in range(k):
        r, col = divmod(n, g)
        out[r * (p + _GAP) : r * (p + _GAP) + p, col * (q + _GAP) : col * (q + _GAP) + q] = tiles[n]
    return out


def layer_mosaic(visuals: LayerVisuals, ncols: int = 4) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The figure as one uint8 image, and the (x, y) top-left pixel of every cell."""
    cells = []
    for i in range(len(visuals.channels)):
        left, right = _grid(visuals.projections[i]), _grid(visuals.patches[i])
        gap = np.full((left.shape[0], _CELL_GAP, left.shape[2]), _WHITE, np.uint8)
        cells.append(np.concatenate([left, gap, right], axis=1))
    if not cells:
        raise ValueError(f"no channels to plot for layer {visuals.layer!r}")
    ch, cw = cells[0].shape[:2]
    ncols = max(1, min(ncols, len(cells)))
    nrows = math.ceil(len(cells) / ncols)
    label = 16  # px above each cell for its label
    mosaic = np.full(
        (nrows * (ch + label + _CELL_GAP), ncols * (cw + 2 * _CELL_GAP), 3), _WHITE, np.uint8
    )
    origins = []
    for n, cell in enumerate(cells):
        r, c = divmod(n, ncols)
        y, x = r * (ch + label + _CELL_GAP) + label, c * (cw + 2 * _CELL_GAP)
        mosaic[y : y + ch, x : x + cw] = cell
        origins.append((x, y))
    return mosaic, origins


def plot_top_activations(
    visuals: LayerVisuals, ncols: int = 4, title: str | None = None, dpi: int = 100
) -> Figure:
    """Fig 2 panel for one layer: per feature map, k projections beside k image patches.

    Returns a `matplotlib.figure.Figure` at the mosaic's native resolution
    (save with `fig.savefig(path)`; in a notebook it displays as is).
    """
    mosaic, origins = layer_mosaic(visuals, ncols)
    h, w = mosaic.shape[:2]
    head = 40
    fig = Figure(figsize=(w / dpi, (h + head) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, h / (h + head)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for n, (x, y) in enumerate(origins):
        c = int(visuals.channels[n])
        best = float(visuals.values[n, 0])
        text = f"ch {c}: dead" if visuals.dead[n] else f"ch {c}  max {best:.3g}"
        ax.text(x, y - 3, text, fontsize=8, va="bottom", ha="left",
                color="crimson" if visuals.dead[n] else "black")
    dead = [int(c) for c, d in zip(visuals.channels, visuals.dead) if d]
    title = title or (
        f"{visuals.layer}: top {visuals.projections.shape[1]} activations "
        f"(left: {visuals.rule} projections, right: image patches)"
    )
    if dead:
        title += f"\ndead channels shown: {dead}"
    fig.text(0.01, 1 - 4 / (h + head), title, fontsize=10, va="top", ha="left")
    return fig
