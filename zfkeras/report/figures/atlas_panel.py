"""The panel of Fig 2 (one matplotlib figure per layer) and the pictures of an atlas folder.

`plot_top_activations`: the cards of one layer's live maps in one figure (for notebooks and
the atlas folder), every tile upscaled to >= `MIN_TILE` px. Dead maps (never fired on the
images) get no blank card: they are listed, compactly, under the figure. The title, every
label and the caption saying how projections are normalized lie inside the canvas (tested
with the renderer's text extents).

`write_atlas`: the one writer of an atlas folder's pictures and settings, after
`zfkeras.deconv.atlas.compute_atlas` (the arrays) has filled it: `<layer>_top<k>.png`,
`_p2.png`, ... (at most `PAGE_MAPS` maps a page, tiles shown at 48 px: sized for a screen) and
`config.json`. `zfkeras visualize`, `zfkeras atlas` and the report's Figs 1-2 call it, so a
folder has one layout whoever wrote it.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from zfkeras.report.figures.atlas import card_image, encode, resize_tiles
from zfkeras.report.figures.dream import dream_rows
from zfkeras.report.plotting import MIN_TILE, compact_ranges, tile_factor
from zfkeras.utils.io import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.analysis.fv_result import FeatureVisualizationResult
    from zfkeras.deconv.atlas import Atlas
    from zfkeras.deconv.visuals import LayerVisuals

__all__ = ["PAGE_MAPS", "layer_mosaic", "plot_top_activations", "write_atlas"]

PAGE_MAPS = 16  # maps per panel page
_WHITE = 255

_CELL_GAP = 14  # px between the projection grid and the patch grid / cells
_LABEL = 20  # px above each cell for its label
_FONT_PX = {8: 11, 9: 12.5, 10: 14}  # approx. line height in px at 100 dpi


def layer_mosaic(
    visuals: LayerVisuals, ncols: int = 4, min_tile: int = MIN_TILE, rows: np.ndarray | None = None,
    max_tile: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The cards of `rows` (default: every channel) as one uint8 image, and each card's (x, y) top-left px.

    Tiles larger than `max_tile` px are downscaled to it (None: never), then upscaled by
    `tile_factor(side, min_tile)`; a `_LABEL` px strip above each card is left white for its label.
    """
    rows = np.arange(len(visuals.channels)) if rows is None else np.asarray(rows, np.int64)
    if not len(rows):
        raise ValueError(f"no channels to plot for layer {visuals.layer!r}")
    side = visuals.projections.shape[2]
    shown = side if max_tile is None else min(side, max_tile)
    factor = tile_factor(shown, min_tile)

    def tiles(t: np.ndarray) -> np.ndarray:
        return t if shown == side else resize_tiles(np.asarray(t, np.uint8), shown)

    cells = [card_image(tiles(visuals.projections[i]), tiles(visuals.patches[i]), factor, pad=2, gap=_CELL_GAP)
             for i in rows]
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
    min_tile: int = MIN_TILE, n_images: int | None = None, rows: np.ndarray | None = None,
    max_tile: int | None = None,
) -> "matplotlib.figure.Figure":
    """Fig 2 panel for one layer: per live feature map, k projections beside k image patches.

    Args:
        visuals: from `top_projections`.
        ncols: cards per row.
        title: figure title (default: layer, k, what left and right are).
        dpi: the figure is at the mosaic's native resolution at this dpi.
        min_tile: smallest displayed tile side in px (nearest-neighbour upscaling).
        n_images: images scanned (said in the dead-map line when given).
        rows: the live rows to draw (a page; default: every live map).
        max_tile: tiles larger than this are shown downscaled to it (None: native size).

    Returns:
        a `matplotlib.figure.Figure` (save with `save_figure`; in a notebook it displays as is).
    """
    from matplotlib.figure import Figure as MplFigure

    dead = np.asarray(visuals.dead, bool)
    live = np.flatnonzero(~dead) if rows is None else np.asarray(rows, np.int64)
    k = visuals.projections.shape[1]
    side = visuals.projections.shape[2]
    shown_side = side if max_tile is None else min(side, max_tile)
    factor = tile_factor(shown_side, min_tile)
    if len(live):
        mosaic, origins = layer_mosaic(visuals, ncols, min_tile, rows=live, max_tile=max_tile)
    else:
        mosaic, origins = np.full((40, 600, 3), _WHITE, np.uint8), []
    h, w = mosaic.shape[:2]
    labels = []
    for n, (x, y) in zip(live, origins):
        fired = int(np.sum(np.asarray(visuals.values[n]) > 0))
        few = f"  (fired on {fired} image{'s' if fired > 1 else ''})" if fired < k else ""  # the rest: grey
        labels.append((x, y, f"map {int(visuals.channels[n])}  max {float(visuals.values[n, 0]):.3g}{few}"))
    # a label longer than its card (small tiles, few images fired) widens the canvas (0.62 em per glyph)
    w_fig = max([w, 480] + [int(x + 0.62 * _FONT_PX[8] * len(t)) + 8 for x, _, t in labels])
    title = title or (
        f"{visuals.layer}: top {k} activations per feature map "
        f"(left: {visuals.rule} projections, right: image patches)"
    )
    caption = (
        f"Each projection is scaled on its own: grey = 0, black/white = its largest |value|"
        f"{'' if visuals.contrast == 1 else f' / contrast {visuals.contrast:g}'}. "
        + (f"Tiles: the {visuals.field_side} px receptive field, shown x{factor} (nearest neighbour)."
           if (max_tile is None or side <= max_tile) and visuals.field_side == side
           else f"Tiles: the {visuals.field_side} px receptive field, shown at {shown_side * factor} px.")
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
    fig = MplFigure(figsize=(w_fig / dpi, H / dpi), dpi=dpi)
    ax = fig.add_axes((0, foot / H, w / w_fig, h / H))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text in labels:
        ax.text(x, y - 5, text, fontsize=8, va="bottom", ha="left", color="black", clip_on=False)
    fig.text(pad / w_fig, 1 - pad / H, "\n".join(title_lines), fontsize=10, va="top", ha="left")
    fig.text(pad / w_fig, (foot - pad) / H, "\n".join(cap_lines), fontsize=8, va="top", ha="left",
             color="#333333", linespacing=1.3)
    return fig


def write_atlas(folder: str | os.PathLike, atlas: Atlas, *, model: str, data: str, list_file: str | None = None,
                skipped: Sequence[dict] = (),
                dreams: Mapping[str, FeatureVisualizationResult] | None = None) -> list[Path]:
    """Draw each layer's panel (paged, `PAGE_MAPS` maps a page) and write `config.json`; returns the PNGs.

    `model`, `data`, `list_file`: as given by the user (recorded); `skipped`: `{"path", "reason"}`
    of the files that did not decode; `dreams`: `{layer: FeatureVisualizationResult}` of the shown
    maps, written as `<layer>_dream.npz` and drawn beside their top-k as `<layer>_dream.png` (`dream_rows`).
    """
    folder = Path(folder)
    k = atlas.top.k
    written = []
    for layer, v in atlas.visuals.items():
        dream = (dreams or {}).get(layer)
        dream_png = encode(dream_rows(v, dict(zip(map(int, dream.units), dream.images))), "png") if dream else None
        live = np.flatnonzero(~np.asarray(v.dead, bool))
        pages = [live[i:i + PAGE_MAPS] for i in range(0, len(live), PAGE_MAPS)] or [live]
        for p, rows in enumerate(pages):
            name = f"{layer}_top{k}.png" if p == 0 else f"{layer}_top{k}_p{p + 1}.png"
            title = None if len(pages) == 1 else (
                f"{layer}: top {k} activations per feature map, page {p + 1} of {len(pages)} "
                f"(left: {v.rule} projections, right: image patches)")
            fig = plot_top_activations(v, n_images=atlas.top.n_images, rows=rows, title=title, max_tile=48)
            _save_rgb_png(fig, folder / name)
            written.append(folder / name)
        for old in folder.glob(f"{layer}_top{k}_p*.png"):  # pages of an earlier, larger run
            if old not in written:
                old.unlink()
        if dream is not None:
            dream.save(folder / f"{layer}_dream.npz")
            atomic_write_bytes(folder / f"{layer}_dream.png", dream_png)
    atomic_write_json(folder / "config.json", {
        "model": str(model), "data": str(data), "list": str(list_file) if list_file else None,
        **atlas.settings.to_dict(), "layers": list(atlas.visuals),
        "channels_shown": {l: [int(c) for c in v.channels] for l, v in atlas.visuals.items()},
        "images": atlas.top.n_images, "warnings": atlas.warnings,
        "skipped": [{"path": str(d["path"]), "reason": str(d["reason"])} for d in skipped],
    })
    return written


def _save_rgb_png(fig, path: Path) -> None:
    """`fig` as an optimized RGB PNG, atomically (matplotlib writes RGBA: about 13 % more bytes here)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = io.BytesIO()
    Image.open(buf).convert("RGB").save(out, format="PNG", optimize=True)
    atomic_write_bytes(path, out.getvalue())
