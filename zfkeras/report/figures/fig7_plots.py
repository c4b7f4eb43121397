"""Fig 7's panels drawn: `plot_occlusion` (a)-(e) of one image, `occlusion_montage` (panel c),
`probability_change` (panel d's scale), `HARDLY_REACTS` and `misclassified_note` (what the panels
and the section's sentences share). The section, its sentences and its writer are in
`fig7_occlusion`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn
    import matplotlib.figure

    from zfkeras.analysis.occlusion import OcclusionResult

__all__ = ["HARDLY_REACTS", "misclassified_note", "occlusion_montage", "plot_occlusion", "probability_change"]

_GAP = 3  # px between montage tiles
_FRAME = 3  # px black frame around this image's projection
_MAX_LEGEND = 8


# A largest change of p(class) under occlusion below this is "the model hardly reacts to occlusion":
# panel (d) then shows it near-white (its colour scale is at least +-HARDLY_REACTS) and says so.
HARDLY_REACTS = 0.05


def misclassified_note(result: OcclusionResult) -> str:
    """A sentence when the model's top class on the unoccluded image is not the class of panel (d)."""
    if not result.has_classes:
        return ""
    top = int(np.argmax(result.base_probabilities))
    if top == int(result.target):
        return ""
    names = result.class_names
    return (f"The model misclassifies this image: its top class is {names[top]!r} "
            f"(p {float(result.base_probabilities[top]):.3f}), not {names[result.target]!r}.")


def occlusion_montage(
    result: OcclusionResult, max_others: int = 8, contrast: float = 1.0
) -> np.ndarray | None:
    """Panel (c) as one float image in [0, 1]: this image's projection, then the others'.

    Each projection is cropped to its receptive-field window (grey outside the
    image) and normalized for display (`zfkeras.deconv.display.to_display`);
    the first tile has a black frame, the others (up to `max_others`) follow in
    a grid with `ceil(sqrt(k))` columns to its right. None when the result has
    no projection.
    """
    from zfkeras.deconv.display import cut_patch, to_display

    if result.projection is None:
        return None
    grey = 0.5

    def crop(img, window):
        return cut_patch(to_display(img[None], contrast)[0], window, fill=grey)

    main = crop(result.projection, result.projection_window)
    p, q, c = main.shape
    framed = np.zeros((p + 2 * _FRAME, q + 2 * _FRAME, c), np.float32)
    framed[_FRAME:-_FRAME, _FRAME:-_FRAME] = main
    others = [] if result.other_projections is None else [
        crop(img, w) for img, w in zip(result.other_projections[:max_others], result.other_windows)
    ]
    if not others:
        return framed
    k = len(others)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    th = (framed.shape[0] - (rows - 1) * _GAP) / rows  # tile side so the grid matches the height
    side = max(4, int(th))
    grid = np.ones((rows * side + (rows - 1) * _GAP, cols * side + (cols - 1) * _GAP, c), np.float32)
    for n, tile in enumerate(others):
        r, col = divmod(n, cols)
        iy = (np.arange(side) * p / side).astype(int)
        ix = (np.arange(side) * q / side).astype(int)
        y, x = r * (side + _GAP), col * (side + _GAP)
        grid[y : y + side, x : x + side] = tile[iy][:, ix]
    height = max(framed.shape[0], grid.shape[0])
    out = np.ones((height, framed.shape[1] + 2 * _GAP + grid.shape[1], c), np.float32)
    out[: framed.shape[0], : framed.shape[1]] = framed
    out[: grid.shape[0], framed.shape[1] + 2 * _GAP :] = grid
    return out


_TITLE, _SMALL = 11, 10  # pt at 100 dpi: 15 and 14 px, >= 10 px when the 1400 px figure is shown at PAGE_WIDTH


def plot_occlusion(
    result: OcclusionResult,
    image: np.ndarray,
    *,
    title: str | None = None,
    contrast: float = 1.0,
    max_others: int = 8,
    dpi: int = 100,
) -> "matplotlib.figure.Figure":
    """The five Fig 7 panels for one image.

    Args:
        result: from `OcclusionSensitivity.run`.
        image: `(S, S, 3)` the model input the result was computed on (0..255).
        title: figure title; default names the class, layer and map.
        contrast: display contrast of the projections.
        max_others: other images' projections shown in (c).

    Returns:
        a `matplotlib.figure.Figure` (save with `save_figure`).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.patches import Patch, Rectangle

    image = np.asarray(image)
    size = result.image_size
    if image.shape[:2] != (size, size):
        raise ValueError(f"`image` must be the {size}x{size} model input of the result; got {image.shape}")
    names = result.class_names
    classes = result.has_classes  # a backbone without a classifier: panels (a)-(c) only
    ratios = [1, 1.2, 1.6, 1.2, 1] if classes else [1, 1.2, 1.6]
    # read at PAGE_WIDTH: every text >= 10 px there
    fig = MplFigure(figsize=(14 if classes else 9.0, 4.8), dpi=dpi)
    axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)

    # (a) input with the occluder where the class probability (a backbone: the map's activation) is lowest.
    lowest = result.probability if classes else result.activation
    i, j = np.unravel_index(np.argmin(lowest), lowest.shape)
    top, left = int(result.offsets[i]), int(result.offsets[j])
    shown = image.astype(np.float32).copy()
    p = result.patch
    shown[top : top + p, left : left + p] = result.fill[top : top + p, left : left + p]
    ax = axes[0]
    ax.imshow(np.clip(shown, 0, 255).astype(np.uint8), extent=extent)
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), p, p, fill=False, ec="white", lw=1))
    n = len(result.offsets)
    ax.set_title(f"(a) input, occluder {p} px\n(stride {result.stride}, {n}² positions)", fontsize=_TITLE)

    # (b) total activation of the feature map.
    ax = axes[1]
    im = ax.imshow(result.upsampled("activation"), cmap="jet", extent=extent)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=_SMALL)
    ax.set_title(
        f"(b) {result.layer} map {result.channel}: total activation\n"
        f"(unoccluded {result.base_activation:.3g})",
        fontsize=_TITLE,
    )

    # (c) projections.
    ax = axes[2]
    montage = occlusion_montage(result, max_others, contrast)
    if montage is None:
        ax.text(0.5, 0.5, f"no deconv projection\nfor layer {result.layer}", ha="center", va="center",
                transform=ax.transAxes, fontsize=_TITLE)
        ax.set_title("(c) projection", fontsize=_TITLE)
    else:
        ax.imshow(montage, interpolation="nearest")
        k = 0 if result.other_projections is None else min(len(result.other_projections), max_others)
        ax.set_title(f"(c) map {result.channel}: this image (framed)\n+ {k} other images", fontsize=_TITLE)

    if not classes:
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        head = title or f"Occlusion sensitivity: layer {result.layer} map {result.channel}"
        fig.suptitle(f"{head}\nthe model is a backbone without a classifier: no class panels (d), (e)",
                     fontsize=11, color="black")
        fig.subplots_adjust(left=0.01, right=0.97, top=0.80, bottom=0.05, wspace=0.3)
        return fig

    # (d) probability of the class, as the change from the unoccluded image on its own range:
    # on a fixed 0..1 scale a class the model is sure of (or rules out) is one flat colour.
    ax = axes[3]
    base, delta, lim = probability_change(result)
    im = ax.imshow(result.upsampled("probability") - base, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(f"p - {base:.3f} (unoccluded)", fontsize=_SMALL)
    bar.ax.tick_params(labelsize=_SMALL)
    low, high = float(result.probability.min()), float(result.probability.max())
    hardly = float(np.abs(delta).max()) < HARDLY_REACTS
    ax.set_title(f"(d) p({names[result.target]}): change when occluded\n"
                 f"unoccluded {base:.3f}; occluded {low:.3f} to {high:.3f}"
                 + ("\nhardly reacts (pale: scale ±0.05)" if hardly else ""), fontsize=_TITLE)

    # (e) most probable class, legend by area.
    ax = axes[4]
    labels = result.upsampled("top_class")
    present, counts = np.unique(labels, return_counts=True)
    order = present[np.argsort(-counts, kind="stable")]
    palette = _palette(len(order))  # colour k for the k-th largest class area
    rank = np.zeros(int(order.max()) + 1, np.int64)
    rank[order] = np.arange(len(order))
    ax.imshow(rank[labels], cmap=ListedColormap(palette), vmin=-0.5, vmax=len(order) - 0.5,
              interpolation="nearest", extent=extent)
    handles = [Patch(color=palette[k], label=names[c]) for k, c in enumerate(order[:_MAX_LEGEND])]
    if len(order) > _MAX_LEGEND:
        handles.append(Patch(color="white", label=f"+{len(order) - _MAX_LEGEND} more"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), fontsize=_SMALL,
              ncol=2, frameon=False)
    ax.set_title("(e) most probable class", fontsize=_TITLE)

    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    head = title or (f"Occlusion sensitivity: class {names[result.target]!r}, "
                     f"layer {result.layer} map {result.channel}")
    note = misclassified_note(result)
    fig.suptitle(head + (f"\n{note}" if note else ""), fontsize=13, color="black")
    fig.subplots_adjust(left=0.01, right=0.965, top=0.75 if note else 0.80, bottom=0.2, wspace=0.35)
    return fig


def probability_change(result: OcclusionResult) -> tuple[float, np.ndarray, float]:
    """`(p unoccluded, p - p unoccluded per position, colour limit)` of panel (d).

    The colour scale is symmetric around 0 and spans the largest change, but at least
    `HARDLY_REACTS`: a real drop uses the full colour range whatever the unoccluded
    probability, while a map that stays within 0.999-1.000 is drawn near-white, not as
    if its 0.001 wiggle were a reaction.
    """
    base = float(result.base_probabilities[result.target])
    delta = np.asarray(result.probability, np.float64) - base
    return base, delta, max(float(np.abs(delta).max()), HARDLY_REACTS)


def _palette(n: int) -> list:
    from matplotlib import colormaps

    base = colormaps["tab10" if n <= 10 else "tab20"]
    return [base(k % base.N) for k in range(max(n, 1))]




# ------------------------------------------------------------------ the report's figure
