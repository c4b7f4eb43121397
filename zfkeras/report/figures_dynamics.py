"""Figures of training dynamics, invariance and architecture diagnostics (Figs 4, 5, 6).

Plotting only: the numbers come from `zfkeras.analysis.evolution`,
`.invariance` and `.diagnostics`. Every function returns a matplotlib
`Figure` (no pyplot state, Agg-safe); `save_figure` writes one atomically.
Filters are shown with the display normalization of `zfkeras.deconv.display`
(each filter scaled by its own largest |weight|: 0 = grey, extremes black /
white), so dead filters are flat grey.
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from zfkeras.analysis.diagnostics import ClippedHistory, Diagnostics
from zfkeras.analysis.evolution import EvolutionSnapshot
from zfkeras.analysis.invariance import UNITS, InvarianceResult
from zfkeras.deconv.display import to_display
from zfkeras.report.save import save_figure  # noqa: F401 (re-exported)

__all__ = [
    "filter_mosaic",
    "plot_clipped_history",
    "plot_feature_evolution",
    "plot_filter_grids",
    "plot_invariance",
    "plot_layer2_features",
    "save_figure",
    "tile",
]

_LAYER_TITLES = {"norm1": "layer 1 (norm1)", "fc7": "layer 7 (fc7)"}
_TRANSFORM_TITLES = {
    "translation": "vertical translation (px at 224)",
    "scale": "scale factor",
    "rotation": "rotation (degrees)",
}




# ------------------------------------------------------------------ mosaics
def tile(images: np.ndarray, ncols: int | None = None, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile `(K, h, w, C)` images in a grid (`ncols` default ceil(sqrt(K))), `pad` px apart.

    Returns `(rows * (h + pad) - pad, ncols * (w + pad) - pad, C)` of the input dtype.
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


def filter_mosaic(kernel: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Layer-1 filters `(kh, kw, 3, C)` as one display image in [0, 1] (see module doc)."""
    k = np.asarray(kernel, np.float32)
    if k.ndim != 4:
        raise ValueError(f"kernel must be (kh, kw, in, out); got shape {k.shape}")
    filters = np.transpose(k, (3, 0, 1, 2))
    if filters.shape[-1] not in (1, 3):
        filters = filters[..., :1]
    disp = to_display(filters)
    if disp.shape[-1] == 1:
        disp = np.repeat(disp, 3, axis=-1)
    return tile(disp, ncols, pad)


# --------------------------------------------------------------- Fig 6
def plot_filter_grids(
    diagnostics: Sequence[Diagnostics] | None = None,
    *,
    kernels: Sequence[np.ndarray] | None = None,
    titles: Sequence[str] | None = None,
    panel_inches: float = 4.0,
) -> Figure:
    """Layer-1 filters of several models side by side (Fig 6 a-c).

    Give `diagnostics` (titles show kernel, dead %, band shares) or raw
    `kernels` `(kh, kw, 3, C)` with `titles`.
    """
    if diagnostics is not None:
        kernels = [d.kernel for d in diagnostics]
        titles = titles or [_diag_title(d) for d in diagnostics]
    if not kernels:
        raise ValueError("give diagnostics or kernels")
    titles = list(titles) if titles else [f"model {i + 1}" for i in range(len(kernels))]
    mosaics = [filter_mosaic(k) for k in kernels]
    aspect = max(m.shape[0] / m.shape[1] for m in mosaics)
    fig = Figure(figsize=(panel_inches * len(kernels), panel_inches * aspect + 0.9), layout="constrained")
    axes = fig.subplots(1, len(kernels), squeeze=False)[0]
    for ax, mosaic, title in zip(axes, mosaics, titles):
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("layer-1 filters")
    return fig


def _diag_title(d: Diagnostics) -> str:
    s = d.summary()
    parts = [f"{d.name}: {s['kernel']}", f"dead {100 * s['dead_fraction']:.0f}%"]
    if s.get("energy_high") is not None:
        parts.append(
            f"low/mid/high {100 * s['energy_low']:.0f}/{100 * s['energy_mid']:.0f}/{100 * s['energy_high']:.0f}%"
        )
    parts.append(f"top filter {100 * s['top_filter_share']:.1f}%")
    return "\n".join([", ".join(parts[:2]), ", ".join(parts[2:])])


def layer2_blank(d: Diagnostics) -> np.ndarray:
    """`(K,)` bool: layer-2 channels whose projection is blank (the channel never fired on the probe).

    `Diagnostics.layer2_aliasing` is NaN exactly for those (no positive activation to project).
    """
    if d.layer2_aliasing is None:
        return np.zeros(len(d.layer2_patches), bool)
    return np.isnan(np.asarray(d.layer2_aliasing, np.float64))


def plot_layer2_features(diagnostics: Sequence[Diagnostics], panel_inches: float = 4.0,
                         min_tile: int = 48) -> Figure:
    """Layer-2 projections (strongest activation per channel over the probe set) side by side (Fig 6 d, e).

    Channels that never fired on the probe images have a blank projection: they are not drawn
    but listed under their panel with the reason. Tiles are shown at >= `min_tile` px.
    """
    from zfkeras.deconv.figures import compact_ranges, tile_factor

    have = [d for d in diagnostics if d.layer2_patches is not None]
    if not have:
        raise ValueError("no layer-2 projections: run `diagnose` with probe images")
    mosaics, notes = [], []
    for d in have:
        blank = layer2_blank(d)
        live = np.asarray(d.layer2_patches)[~blank]
        if len(live):
            f = tile_factor(live.shape[1], min_tile)
            live = np.repeat(np.repeat(live, f, axis=1), f, axis=2)
            mosaics.append(tile(live, pad=2))
        else:
            mosaics.append(np.ones((8, 8, 3), np.float32))
        chans = np.asarray(d.layer2_channels if d.layer2_channels is not None else np.arange(len(blank)))
        notes.append(
            f"not shown: {int(blank.sum())} of {len(blank)} channels never fired on the probe images "
            f"(blank projection): {compact_ranges(chans[blank])}" if blank.any() else "")
    aspect = max(m.shape[0] / m.shape[1] for m in mosaics)
    fig = Figure(figsize=(panel_inches * len(have), panel_inches * aspect + 1.2), layout="constrained")
    axes = fig.subplots(1, len(have), squeeze=False)[0]
    for ax, d, mosaic, note in zip(axes, have, mosaics, notes):
        ax.imshow(mosaic, interpolation="nearest")
        alias = d.summary()["layer2_aliasing"]
        extra = f", aliasing {100 * alias:.0f}%" if alias is not None else ""
        shown = int((~layer2_blank(d)).sum())
        ax.set_title(f"{d.name}: {d.layer2} ({shown} of {len(d.layer2_patches)} channels){extra}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if note:
            ax.set_xlabel(textwrap.fill(note, int(panel_inches * 12)), fontsize=8, color="#444")
    fig.suptitle("layer-2 features (deconv projections)")
    return fig


def plot_clipped_history(
    histories: Mapping[str, ClippedHistory], layers: Sequence[str] = ("conv1",)
) -> Figure:
    """Per-epoch fraction of filters at the RMS radius, one line per (run, layer)."""
    if not histories:
        raise ValueError("no histories given")
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for name, hist in histories.items():
        for layer in layers:
            if layer in hist.fractions:
                ax.plot(hist.epochs, 100 * hist.fractions[layer], marker=".", label=f"{name} {layer}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("filters clipped to the RMS radius (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- Fig 4
def plot_feature_evolution(snapshot: EvolutionSnapshot, cell_inches: float = 0.6) -> Figure:
    """The evolution grid with row (layer:channel) and column (epoch) labels."""
    r, e = snapshot.cells.shape[:2]
    fig = Figure(figsize=(1.2 + cell_inches * e, 0.6 + cell_inches * r))
    axes = fig.subplots(r, e, squeeze=False)
    labels = snapshot.row_labels()
    for i in range(r):
        for j in range(e):
            ax = axes[i, j]
            ax.imshow(snapshot.cells[i, j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"ep {int(snapshot.epochs[j])}", fontsize=8)
            if j == 0:
                ax.set_ylabel(labels[i], fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


# ---------------------------------------------------------------- Fig 5
def plot_invariance(
    result: InvarianceResult,
    examples: Mapping[str, tuple[Sequence[float], np.ndarray]] | None = None,
    image_names: Sequence[str] | None = None,
) -> Figure:
    """Fig 5: one row per transform; columns: examples, distance per layer, p(true class).

    Args:
        result: from `invariance_curves`.
        examples: optional `{kind: (values, (k, S, S, 3) images)}` shown as a
            strip in the first column (e.g. `transform_image` of image 0).
        image_names: legend labels, one per image.
    """
    kinds = list(result.curves)
    n_img = len(result.labels)
    names = list(image_names) if image_names is not None else [f"image {i}" for i in range(n_img)]
    ncols = len(result.layers) + 1 + (1 if examples else 0)
    fig = Figure(figsize=(3.4 * ncols, 2.8 * len(kinds)))
    axes = fig.subplots(len(kinds), ncols, squeeze=False)
    colors = [f"C{i % 10}" for i in range(n_img)]
    for row, kind in enumerate(kinds):
        c = result.curves[kind]
        col = 0
        if examples:
            ax = axes[row, 0]
            if kind in examples:
                vals, imgs = examples[kind]
                ax.imshow(tile(np.asarray(imgs, np.uint8), ncols=len(imgs), pad=2, fill=255))
                ax.set_title(", ".join(_fmt(v) for v in vals), fontsize=7)
            ax.axis("off")
            col = 1
        for layer in result.layers:
            ax = axes[row, col]
            for i in range(n_img):
                ax.plot(c.values, c.distances[layer][i], color=colors[i], marker=".", label=names[i])
            ax.set_title(_LAYER_TITLES.get(layer, layer), fontsize=9)
            ax.set_ylabel("||f(Tx) - f(x)|| / ||f(x)||", fontsize=8)
            col += 1
        ax = axes[row, col]
        for i in range(n_img):
            ax.plot(c.values, c.probabilities[i], color=colors[i], marker=".", label=names[i])
        ax.set_ylim(0, 1)
        ax.set_title("p(true class)", fontsize=9)
        for a in axes[row, (1 if examples else 0):]:
            a.set_xlabel(_TRANSFORM_TITLES.get(kind, f"{kind} ({UNITS.get(kind, '')})"), fontsize=8)
            a.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _fmt(v: float) -> str:
    return f"{v:g}"
